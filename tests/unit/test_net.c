/*
 * --publish and --host-port as the user writes them (net/pasta.h): the
 * host's loopback unless an address is given, never 0.0.0.0 by default;
 * ports 1-65535; /udp or /tcp; IPv6 addresses in brackets; and what is
 * refused. And the publish descriptions -v prints.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "net/pasta.h"

static void publish_defaults_to_loopback_tcp(void **state)
{
	struct net_publish p;
	struct error err;
	char what[96];

	(void)state;
	assert_int_equal(net_publish_parse("8080:80", &p, &err), 0);
	assert_string_equal(p.addr, "127.0.0.1");
	assert_int_equal(p.host_port, 8080);
	assert_int_equal(p.box_port, 80);
	assert_false(p.udp);
	net_publish_describe(&p, what, sizeof(what));
	assert_string_equal(what, "127.0.0.1:8080->80/tcp");
}

static void publish_takes_addresses_and_protocols(void **state)
{
	struct net_publish p;
	struct error err;
	char what[96];

	(void)state;
	assert_int_equal(net_publish_parse("0.0.0.0:53:5353/udp", &p, &err), 0);
	assert_string_equal(p.addr, "0.0.0.0");
	assert_true(p.udp);
	assert_int_equal(net_publish_parse("[::1]:1:65535/tcp", &p, &err), 0);
	assert_string_equal(p.addr, "::1");
	assert_int_equal(p.host_port, 1);
	assert_int_equal(p.box_port, 65535);
	assert_false(p.udp);
	net_publish_describe(&p, what, sizeof(what));
	assert_string_equal(what, "[::1]:1->65535/tcp");
}

static void publish_refuses_what_it_cannot_read(void **state)
{
	static const char *const bad[] = {
		"", "80", "0:80", "80:0", "80:65536", "x:80", "80:80/sctp", "1.2.3:80:80",
		"::1:80:80", "[::1:80:80", "[::1]80:80", "[1.2.3.4]:80:80", "127.0.0.1:80",
		"80:80:80:80", "/udp", "80:80/udp/udp", "999999:80", "+80:80", " 80:80",
	};
	struct net_publish p;
	struct error err;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (net_publish_parse(bad[i], &p, &err) == 0)
			fail_msg("'%s' was taken", bad[i]);
		assert_non_null(strstr(err.msg, "invalid --publish"));
	}
}

static void host_port_is_a_port(void **state)
{
	struct error err;
	uint16_t port;

	(void)state;
	assert_int_equal(net_host_port_parse("5432", &port, &err), 0);
	assert_int_equal(port, 5432);
	assert_int_equal(net_host_port_parse("65535", &port, &err), 0);
	assert_int_not_equal(net_host_port_parse("0", &port, &err), 0);
	assert_int_not_equal(net_host_port_parse("65536", &port, &err), 0);
	assert_int_not_equal(net_host_port_parse("", &port, &err), 0);
	assert_int_not_equal(net_host_port_parse("54x", &port, &err), 0);
	assert_int_not_equal(net_host_port_parse("-1", &port, &err), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(publish_defaults_to_loopback_tcp),
		cmocka_unit_test(publish_takes_addresses_and_protocols),
		cmocka_unit_test(publish_refuses_what_it_cannot_read),
		cmocka_unit_test(host_port_is_a_port),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
