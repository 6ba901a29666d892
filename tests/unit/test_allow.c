/*
 * --allow (net/allow.h): what each value means, what is refused with a
 * one-line reason, and the nftables rules a list becomes; and reading a
 * denial the kernel logged to NFLOG (net/nflog.h).
 */
#include <arpa/inet.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <linux/netlink.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "common/util.h"
#include "net/allow.h"
#include "net/nflog.h"

/* Parse spec and print it back as --allow would name it. */
static void round_trip(const char *spec, enum allow_kind kind, const char *want)
{
	struct allow_rule r;
	struct error err;
	char back[300];

	if (allow_parse(spec, &r, &err) < 0)
		fail_msg("'%s' was refused: %s", spec, err.msg);
	assert_int_equal(r.kind, kind);
	allow_format(&r, back, sizeof(back));
	assert_string_equal(back, want);
}

static void refused(const char *spec, const char *why)
{
	struct allow_rule r;
	struct error err;

	if (allow_parse(spec, &r, &err) == 0)
		fail_msg("'%s' was accepted", spec);
	if (!strstr(err.msg, why))
		fail_msg("'%s': '%s' does not say '%s'", spec, err.msg, why);
	assert_null(strchr(err.msg, '\n'));
}

static void addresses_and_blocks_with_or_without_a_port(void **state)
{
	round_trip("10.1.2.3", ALLOW_ADDR, "10.1.2.3");
	round_trip("10.1.2.3:5432", ALLOW_ADDR, "10.1.2.3:5432");
	round_trip("10.1.2.3/32:5432", ALLOW_ADDR, "10.1.2.3:5432");
	round_trip("192.168.0.0/16", ALLOW_ADDR, "192.168.0.0/16");
	/* Host bits are cleared, as ip(8) does. */
	round_trip("10.1.2.3/8:443", ALLOW_ADDR, "10.0.0.0/8:443");
	round_trip("0.0.0.0/0:53", ALLOW_ADDR, "0.0.0.0/0:53");
	round_trip("2001:db8::1", ALLOW_ADDR, "2001:db8::1");
	round_trip("[2001:db8::1]:443", ALLOW_ADDR, "[2001:db8::1]:443");
	round_trip("[2001:db8::ff/32]:443", ALLOW_ADDR, "[2001:db8::/32]:443");
	round_trip("2001:db8::/32", ALLOW_ADDR, "2001:db8::/32");
	round_trip("[::1]", ALLOW_ADDR, "::1");
}

static void names_are_dns_names(void **state)
{
	round_trip("PyPI.org:443", ALLOW_NAME, "pypi.org:443");
	round_trip("files.pythonhosted.org", ALLOW_NAME, "files.pythonhosted.org");
	round_trip("a-b.c0.example", ALLOW_NAME, "a-b.c0.example");
	round_trip("localhost:80", ALLOW_NAME, "localhost:80");
}

static void bad_values_are_refused_saying_why(void **state)
{
	char long_label[80];

	refused("", "needs a host");
	refused(":443", "no host");
	refused("10.0.0.1:", "port must be a number");
	refused("10.0.0.1:0", "1 to 65535");
	refused("10.0.0.1:65536", "1 to 65535");
	refused("10.0.0.1:http", "port must be a number");
	refused("10.0.0.1:-1", "port must be a number");
	refused("10.0.0.0/33", "0 to 32");
	refused("10.0.0.0/", "prefix length");
	refused("10.0.0.0/x", "prefix length");
	refused("[2001:db8::/129]", "0 to 128");
	refused("[2001:db8::1", "no ']'");
	refused("[2001:db8::1]443", "':PORT' or nothing");
	refused("[10.0.0.1]:80", "not an IP address");
	refused("example.org/24", "not an IP address");
	refused("300.1.2.3", "neither an IP address nor a DNS name");
	refused("[::ffff:10.99.0.1]:8080", "is an IPv4 address written as IPv6; give it as 10.99.0.1");
	refused("exa_mple.org", "neither");
	refused("-bad.example", "neither");
	refused("bad-.example", "neither");
	refused("a..b", "neither");
	refused("a b", "neither");
	memset(long_label, 'a', 64);
	strcpy(long_label + 64, ".example");
	refused(long_label, "neither");
}

static char *ruleset_of(const char *const *specs, size_t n)
{
	struct allow_rule *rules = xcalloc(n ? n : 1, sizeof(*rules));
	struct error err;
	char *text;

	for (size_t i = 0; i < n; i++)
		if (allow_parse(specs[i], &rules[i], &err) < 0)
			fail_msg("%s", err.msg);
	text = allow_ruleset(rules, n);
	free(rules);
	return text;
}

static void assert_has(const char *text, const char *line)
{
	if (!strstr(text, line))
		fail_msg("the rules lack '%s':\n%s", line, text);
}

static void the_rules_accept_loopback_and_the_list_and_reject_the_rest(void **state)
{
	static const char *const specs[] = {"10.99.0.1:8080", "192.168.0.0/16",
					    "[fd99::/64]:443", "example.org:443"};
	char *text = ruleset_of(specs, ARRAY_SIZE(specs));
	const char *log, *reset;

	assert_has(text, "table inet hutch {");
	assert_has(text, "type filter hook output priority filter; policy accept;");
	/* Loopback by interface AND by address: SO_BINDTODEVICE "lo" takes no other. */
	assert_has(text, "oif \"lo\" ip daddr 127.0.0.0/8 accept");
	assert_has(text, "oif \"lo\" ip6 daddr ::1 accept");
	assert_has(text, "elements = { 10.99.0.1 . 8080, 192.168.0.0/16 . 0-65535 }");
	assert_has(text, "elements = { fd99::/64 . 443 }");
	assert_has(text, "meta l4proto { tcp, udp } ip daddr . th dport @allow4 accept");
	assert_has(text, "meta l4proto { tcp, udp } ip6 daddr . th dport @allow6 accept");
	/* Names are resolved later: their sets time out with the answers' TTLs. */
	assert_has(text, "set dns4 {\n\t\ttype ipv4_addr . inet_service\n\t\tflags timeout\n");
	assert_null(strstr(text, "example.org"));
	/* A name is allowed: its stub resolver is reachable, over UDP. */
	assert_has(text, "oif \"lo\" ip daddr 169.254.1.1 udp dport 53 accept");
	/* Logged (at a bounded rate), then refused at once: reset for TCP, port unreachable for the rest. */
	log = strstr(text, "counter limit rate 100/second burst 200 packets log prefix \"hutch-deny\" group 7171");
	reset = strstr(text, "meta l4proto tcp reject with tcp reset");
	assert_non_null(log);
	assert_non_null(reset);
	assert_true(log < reset);
	assert_has(reset, "reject with icmpx type port-unreachable\n\t}");
	assert_null(strstr(text, "drop"));
	free(text);
}

static void an_empty_family_gets_an_empty_set(void **state)
{
	static const char *const specs[] = {"10.0.0.1:1"};
	char *text = ruleset_of(specs, 1);

	assert_has(text, "set allow6 {\n\t\ttype ipv6_addr . inet_service\n\t\tflags interval\n\t}");
	/* No name: the stub still answers (NXDOMAIN), on the box's lo, before pasta could. */
	assert_has(text, "oif \"lo\" ip daddr 169.254.1.1 udp dport 53 accept");
	free(text);
}

/* An NFLOG packet message as the kernel sends it: prefix, then the packet's headers. */
static size_t nflog_message(char *buf, const char *prefix, const uint8_t *pkt, size_t plen)
{
	struct nlmsghdr *nh = (struct nlmsghdr *)buf;
	size_t len = NLMSG_SPACE(sizeof(struct nfgenmsg));
	struct nlattr *a;

	memset(buf, 0, 512);
	nh->nlmsg_type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET;
	a = (struct nlattr *)(buf + len);
	a->nla_type = NFULA_PREFIX;
	a->nla_len = (uint16_t)(NLA_HDRLEN + strlen(prefix) + 1);
	memcpy(buf + len + NLA_HDRLEN, prefix, strlen(prefix) + 1);
	len += NLA_ALIGN(a->nla_len);
	a = (struct nlattr *)(buf + len);
	a->nla_type = NFULA_PAYLOAD;
	a->nla_len = (uint16_t)(NLA_HDRLEN + plen);
	memcpy(buf + len + NLA_HDRLEN, pkt, plen);
	len += NLA_ALIGN(a->nla_len);
	nh->nlmsg_len = (uint32_t)len;
	return len;
}

static void a_logged_denial_names_its_destination(void **state)
{
	uint8_t tcp4[24] = {0x45, 0, 0, 60, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 99, 0, 2,
			    0x9c, 0x40, 0x1f, 0x91}; /* to 10.99.0.2:8081 */
	uint8_t udp6[44] = {0x60, 0, 0, 0, 0, 8, 17, 64};
	char buf[512] __attribute__((aligned(8)));
	struct nflog_denial d;
	size_t len;

	len = nflog_message(buf, "hutch-deny", tcp4, sizeof(tcp4));
	assert_int_equal(nflog_parse(buf, len, &d), 1);
	assert_string_equal(d.protocol, "tcp");
	assert_string_equal(d.address, "10.99.0.2");
	assert_int_equal(d.port, 8081);
	assert_string_equal(d.prefix, "hutch-deny");

	inet_pton(AF_INET6, "fd99::1", udp6 + 24);
	udp6[42] = 0x00;
	udp6[43] = 53;
	len = nflog_message(buf, "hutch-deny", udp6, sizeof(udp6));
	assert_int_equal(nflog_parse(buf, len, &d), 1);
	assert_string_equal(d.protocol, "udp");
	assert_string_equal(d.address, "fd99::1");
	assert_int_equal(d.port, 53);

	/* Cut short: no port is read from beyond the copy. */
	len = nflog_message(buf, "hutch-deny", tcp4, 21);
	assert_int_equal(nflog_parse(buf, len, &d), 1);
	assert_int_equal(d.port, -1);
	/* A message longer than what was received is not read. */
	len = nflog_message(buf, "hutch-deny", tcp4, sizeof(tcp4));
	assert_int_equal(nflog_parse(buf, len - 8, &d), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(addresses_and_blocks_with_or_without_a_port),
	    cmocka_unit_test(names_are_dns_names),
	    cmocka_unit_test(bad_values_are_refused_saying_why),
	    cmocka_unit_test(the_rules_accept_loopback_and_the_list_and_reject_the_rest),
	    cmocka_unit_test(an_empty_family_gets_an_empty_set),
	    cmocka_unit_test(a_logged_denial_names_its_destination),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
