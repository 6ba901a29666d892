/*
 * The stub resolver's messages (net/dns.h): reading a query's question,
 * answering NXDOMAIN, reading an answer's addresses (with compression and
 * malformed input), and the set elements an allowed answer becomes.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "common/util.h"
#include "net/dns.h"

/* A query for "Allowed.Test" type A, id 0x1234, RD set. */
static const uint8_t query[] = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
				7, 'A', 'l', 'l', 'o', 'w', 'e', 'd', 4, 'T', 'e', 's', 't', 0,
				0, 1, 0, 1};

static void a_query_names_its_question(void **state)
{
	char name[256];
	uint16_t type;

	assert_int_equal(dns_question(query, sizeof(query), name, &type), sizeof(query));
	assert_string_equal(name, "allowed.test");
	assert_int_equal(type, 1);
}

static void malformed_queries_are_not_read(void **state)
{
	uint8_t q[sizeof(query)];
	char name[256];
	uint16_t type;

	for (size_t cut = 0; cut < sizeof(query); cut++)
		assert_int_equal(dns_question(query, cut, name, &type), -1);
	memcpy(q, query, sizeof(q));
	q[2] |= 0x80; /* an answer, not a query */
	assert_int_equal(dns_question(q, sizeof(q), name, &type), -1);
	memcpy(q, query, sizeof(q));
	q[12] = 0xc0; /* a pointer in a question */
	assert_int_equal(dns_question(q, sizeof(q), name, &type), -1);
	memcpy(q, query, sizeof(q));
	q[12] = 60; /* a label past the end */
	assert_int_equal(dns_question(q, sizeof(q), name, &type), -1);
	memcpy(q, query, sizeof(q));
	q[15] = '.'; /* "al.owed": no such name in --allow can match it */
	assert_int_equal(dns_question(q, sizeof(q), name, &type), sizeof(q));
	assert_string_equal(name, "al?owed.test");
}

static void nxdomain_keeps_the_id_and_question(void **state)
{
	uint8_t q[sizeof(query) + 11];
	size_t n;

	memcpy(q, query, sizeof(query));
	memset(q + sizeof(query), 0xaa, 11); /* an EDNS record, dropped */
	q[11] = 1;
	n = dns_nxdomain(q, sizeof(q));
	assert_int_equal(n, sizeof(query));
	assert_int_equal(q[0], 0x12);
	assert_int_equal(q[1], 0x34);
	assert_int_equal(q[2], 0x81); /* QR, RD */
	assert_int_equal(q[3] & 0x0f, 3);
	assert_int_equal(q[5], 1);
	assert_int_equal(q[7] | q[9] | q[11], 0);
	assert_memory_equal(q + 12, query + 12, sizeof(query) - 12);
}

/* The answer: the question, then a CNAME, an A and an AAAA, names compressed. */
static size_t answer(uint8_t *a)
{
	static const uint8_t rrs[] = {
	    0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 30, 0, 2, 0xc0, 20,            /* CNAME -> test */
	    0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 99, 0, 1,        /* A, TTL 60 */
	    0xc0, 12, 0, 28, 0, 1, 0x80, 0, 0, 0, 0, 16, 0xfd, 0x99, 0, 0, /* AAAA, TTL "negative" */
	    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
	memcpy(a, query, sizeof(query));
	a[2] = 0x81;
	a[3] = 0x80;
	a[7] = 3;
	memcpy(a + sizeof(query), rrs, sizeof(rrs));
	return sizeof(query) + sizeof(rrs);
}

static void an_answer_gives_its_addresses_and_ttls(void **state)
{
	uint8_t a[256];
	size_t n = answer(a);
	struct dns_addr addrs[4];
	char s[64];

	assert_int_equal(dns_answers(a, n, addrs, 4), 2);
	assert_int_equal(addrs[0].family, AF_INET);
	inet_ntop(AF_INET, addrs[0].addr, s, sizeof(s));
	assert_string_equal(s, "10.99.0.1");
	assert_int_equal(addrs[0].ttl, 60);
	assert_int_equal(addrs[1].family, AF_INET6);
	inet_ntop(AF_INET6, addrs[1].addr, s, sizeof(s));
	assert_string_equal(s, "fd99::1");
	assert_int_equal(addrs[1].ttl, 0);
	/* At most max; and a cut answer is refused, whatever its length. */
	assert_int_equal(dns_answers(a, n, addrs, 1), 1);
	for (size_t cut = sizeof(query); cut < n - 1; cut++)
		assert_true(dns_answers(a, cut, addrs, 4) < 2);
}

static void allowed_answers_become_set_elements_for_their_ttl(void **state)
{
	struct allow_rule rules[3];
	struct error err;
	struct dns_addr a = {.family = AF_INET, .addr = {10, 99, 0, 1}, .ttl = 60};
	char *cmd;

	assert_int_equal(allow_parse("allowed.test:8080", &rules[0], &err), 0);
	assert_int_equal(allow_parse("allowed.test:443", &rules[1], &err), 0);
	assert_int_equal(allow_parse("other.test", &rules[2], &err), 0);
	assert_true(dns_name_allowed(rules, 3, "allowed.test"));
	assert_false(dns_name_allowed(rules, 3, "sub.allowed.test"));
	assert_false(dns_name_allowed(rules, 3, "test"));
	cmd = dns_allow_command(rules, 3, "allowed.test", &a);
	assert_string_equal(cmd, "add element inet hutch dns4 { 10.99.0.1 . 8080 timeout 60s }\n"
				 "add element inet hutch dns4 { 10.99.0.1 . 443 timeout 60s }\n");
	free(cmd);
	a.ttl = 0;
	cmd = dns_allow_command(rules, 3, "other.test", &a);
	assert_string_equal(cmd, "add element inet hutch dnsany4 { 10.99.0.1 timeout 1s }\n");
	free(cmd);
	assert_null(dns_allow_command(rules, 3, "nowhere.test", &a));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(a_query_names_its_question),
	    cmocka_unit_test(malformed_queries_are_not_read),
	    cmocka_unit_test(nxdomain_keeps_the_id_and_question),
	    cmocka_unit_test(an_answer_gives_its_addresses_and_ttls),
	    cmocka_unit_test(allowed_answers_become_set_elements_for_their_ttl),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
