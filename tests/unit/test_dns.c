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

static int read_query(const uint8_t *q, size_t len, struct dns_query *dq, const char **why)
{
	return dns_query_read(q, len, false, dq, why);
}

static void a_query_names_its_question(void **state)
{
	struct dns_query dq;
	const char *why;

	assert_int_equal(read_query(query, sizeof(query), &dq, &why), sizeof(query));
	assert_null(why);
	assert_string_equal(dq.name, "allowed.test");
	assert_int_equal(dq.type, 1);
	assert_int_equal(dq.id, 0x1234);
	assert_true(dq.rd);
	assert_false(dq.edns);
}

static void malformed_queries_are_not_read(void **state)
{
	uint8_t q[sizeof(query)];
	struct dns_query dq;
	const char *why;

	for (size_t cut = 0; cut < sizeof(query); cut++) {
		assert_int_equal(read_query(query, cut, &dq, &why), -1);
		/* Shorter than a header: no reply; else FORMERR. */
		assert_true((why != NULL) == (cut >= 12));
	}
	memcpy(q, query, sizeof(q));
	q[2] |= 0x80; /* an answer, not a query */
	assert_int_equal(read_query(q, sizeof(q), &dq, &why), -1);
	assert_null(why);
	memcpy(q, query, sizeof(q));
	q[12] = 0xc0; /* a pointer in a question */
	assert_int_equal(read_query(q, sizeof(q), &dq, &why), -1);
	memcpy(q, query, sizeof(q));
	q[12] = 60; /* a label past the end */
	assert_int_equal(read_query(q, sizeof(q), &dq, &why), -1);
	memcpy(q, query, sizeof(q));
	q[15] = '.'; /* "al.owed": no such name in --allow can match it */
	assert_int_equal(read_query(q, sizeof(q), &dq, &why), sizeof(q));
	assert_string_equal(dq.name, "al?owed.test");
}

/* Refused, and answered with a header alone: id and RD kept, rcode as given. */
static void assert_refused(const uint8_t *q, size_t len, uint8_t rcode)
{
	struct dns_query dq;
	const char *why;
	uint8_t reply[12];

	assert_int_equal(read_query(q, len, &dq, &why), -1);
	assert_non_null(why);
	assert_int_equal(dns_refusal(q, &dq, reply), 12);
	assert_int_equal(reply[0], q[0]);
	assert_int_equal(reply[1], q[1]);
	assert_int_equal(reply[2] & 0x81, 0x81);
	assert_int_equal(reply[3] & 0x0f, rcode);
	for (int i = 4; i < 12; i++)
		assert_int_equal(reply[i], 0);
}

static void queries_of_another_shape_are_refused(void **state)
{
	/* Two questions: allowed.test, then secret.other.test (RFC 9619: one only). */
	static const uint8_t two[] = {0x12, 0x34, 0x01, 0x00, 0, 2, 0, 0, 0, 0, 0, 0,
				      7, 'a', 'l', 'l', 'o', 'w', 'e', 'd',
				      4, 't', 'e', 's', 't', 0, 0, 1, 0, 1,
				      6, 's', 'e', 'c', 'r', 'e', 't', 5, 'o', 't', 'h', 'e', 'r',
				      4, 't', 'e', 's', 't', 0, 0, 1, 0, 1};
	uint8_t q[sizeof(query) + 16];
	size_t n = sizeof(query);

	assert_refused(two, sizeof(two), 1);
	memcpy(q, query, n);
	q[5] = 0; /* no question */
	assert_refused(q, n, 1);
	memcpy(q, query, n);
	q[7] = 1; /* an answer record of the box's */
	assert_refused(q, n, 1);
	memcpy(q, query, n);
	q[9] = 1; /* an authority record */
	assert_refused(q, n, 1);
	memcpy(q, query, n);
	q[11] = 2; /* two additional records, an OPT first */
	memcpy(q + n, (const uint8_t[]){0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0}, 11);
	memcpy(q + n + 11, (const uint8_t[]){0, 0, 41, 4, 0}, 5);
	assert_refused(q, n + 16, 1);
	memcpy(q, query, n);
	q[2] |= 2 << 3; /* opcode STATUS */
	assert_refused(q, n, 4);
	memcpy(q, query, n);
	q[n - 1] = 3; /* class CH */
	assert_refused(q, n, 5);
	memcpy(q, query, n);
	q[n - 3] = 99; /* type 99 (SPF... or 16 bits of the box's choice) */
	assert_refused(q, n, 5);
	/* --net user forwards any type: its box reaches the world anyway. */
	{
		struct dns_query dq;
		const char *why;

		assert_int_equal(dns_query_read(q, n, true, &dq, &why), (int)n);
		assert_int_equal(dq.type, 99);
		assert_null(why);
	}
	/* One additional record that is not an OPT: A, owner "x". */
	memcpy(q, query, n);
	q[11] = 1;
	memcpy(q + n, (const uint8_t[]){1, 'x', 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0}, 13);
	assert_refused(q, n + 13, 1);
}

static void nxdomain_keeps_the_id_and_question(void **state)
{
	uint8_t q[sizeof(query) + 11];
	struct dns_query dq;
	const char *why;
	size_t n;
	int end;

	memcpy(q, query, sizeof(query));
	memcpy(q + sizeof(query), (const uint8_t[]){0, 0, 41, 16, 0, 0, 0, 0, 0, 0, 0}, 11);
	q[11] = 1; /* an EDNS record, dropped */
	end = read_query(q, sizeof(q), &dq, &why);
	assert_int_equal(end, sizeof(query));
	assert_true(dq.edns);
	n = dns_nxdomain(q, (size_t)end);
	assert_int_equal(n, sizeof(query));
	assert_int_equal(q[0], 0x12);
	assert_int_equal(q[1], 0x34);
	assert_int_equal(q[2], 0x81); /* QR, RD */
	assert_int_equal(q[3] & 0x0f, 3);
	assert_int_equal(q[5], 1);
	assert_int_equal(q[7] | q[9] | q[11], 0);
	assert_memory_equal(q + 12, query + 12, sizeof(query) - 12);
}

static void the_upstream_query_holds_the_question_alone(void **state)
{
	/* The box's EDNS record, with an option of 8 bytes it chose (a cookie, or a secret). */
	static const uint8_t opt[] = {0, 0, 41, 0xff, 0xff, 0x12, 0, 0x80, 0, 0, 12,
				      0, 10, 0, 8, 's', 'e', 'c', 'r', 'e', 't', '!', '!'};
	static const uint8_t want[] = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1,
				       7, 'a', 'l', 'l', 'o', 'w', 'e', 'd',
				       4, 't', 'e', 's', 't', 0, 0, 1, 0, 1,
				       0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0};
	uint8_t q[sizeof(query) + sizeof(opt)], up[512];
	struct dns_query dq;
	const char *why;
	size_t n;

	memcpy(q, query, sizeof(query));
	memcpy(q + sizeof(query), opt, sizeof(opt));
	q[3] = 0x30; /* AD and CD, the box's bits */
	q[11] = 1;
	assert_int_equal(read_query(q, sizeof(q), &dq, &why), sizeof(query));
	n = dns_upstream_query(&dq, up, sizeof(up));
	/* Lowercase, the stub's own OPT (1232 bytes, DO clear, no options), nothing else. */
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(up, want, sizeof(want));
	/* No OPT from the box: none upstream; RD as the box set it. */
	dq.edns = false;
	dq.rd = false;
	n = dns_upstream_query(&dq, up, sizeof(up));
	assert_int_equal(n, sizeof(query));
	assert_int_equal(up[2], 0);
	assert_int_equal(up[11], 0);
	assert_int_equal(dns_upstream_query(&dq, up, sizeof(query) - 1), 0);
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

/* Append a record to the answer a of n bytes: its count goes up by one. */
static size_t add_rr(uint8_t *a, size_t n, const uint8_t *rr, size_t len)
{
	memcpy(a + n, rr, len);
	a[7]++;
	return n + len;
}

static void an_answer_gives_its_addresses_and_ttls(void **state)
{
	uint8_t a[256];
	size_t n = answer(a);
	struct dns_addr addrs[4];
	char s[64];

	assert_int_equal(dns_answers(a, n, "allowed.test", addrs, 4), 2);
	assert_int_equal(addrs[0].family, AF_INET);
	inet_ntop(AF_INET, addrs[0].addr, s, sizeof(s));
	assert_string_equal(s, "10.99.0.1");
	assert_int_equal(addrs[0].ttl, 60);
	assert_int_equal(addrs[1].family, AF_INET6);
	inet_ntop(AF_INET6, addrs[1].addr, s, sizeof(s));
	assert_string_equal(s, "fd99::1");
	assert_int_equal(addrs[1].ttl, 0);
	/* At most max; and a cut answer is refused, whatever its length. */
	assert_int_equal(dns_answers(a, n, "allowed.test", addrs, 1), 1);
	for (size_t cut = sizeof(query); cut < n - 1; cut++)
		assert_true(dns_answers(a, cut, "allowed.test", addrs, 4) < 2);
	/* Not an answer to this question. */
	assert_int_equal(dns_answers(a, n, "other.test", addrs, 4), -1);
}

static void addresses_of_other_names_are_left_out(void **state)
{
	/* evil.example A 10.99.0.2, TTL 600000, after the answer's own. */
	static const uint8_t evil[] = {4, 'e', 'v', 'i', 'l', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e',
				       0, 0, 1, 0, 1, 0, 0x09, 0x27, 0xc0, 0, 4, 10, 99, 0, 2};
	/* sub.allowed.test A 10.99.0.3: a name below, no more allowed.test's than evil.example. */
	static const uint8_t sub[] = {3, 's', 'u', 'b', 0xc0, 12,
				      0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 99, 0, 3};
	uint8_t a[256];
	size_t n = answer(a);
	struct dns_addr addrs[8];

	n = add_rr(a, n, evil, sizeof(evil));
	n = add_rr(a, n, sub, sizeof(sub));
	assert_int_equal(dns_answers(a, n, "allowed.test", addrs, 8), 2);
	assert_int_equal(addrs[0].addr[3], 1);
	assert_int_equal(addrs[1].family, AF_INET6);
}

static void a_cname_chain_leads_to_addresses_in_any_case_and_order(void **state)
{
	/*
	 * allowed.test's answer: B.Example A 10.99.0.9 first, then
	 * a.example CNAME b.example, then allowed.test CNAME A.EXAMPLE.
	 */
	static const uint8_t rrs[] = {
	    1, 'B', 7, 'E', 'x', 'a', 'm', 'p', 'l', 'e', 0,
	    0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 99, 0, 9,       /* at 30: B.Example A */
	    1, 'a', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0,   /* at 55 */
	    0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 0xc0, 30,           /* a.example CNAME B.Example */
	    0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 11,
	    1, 'A', 7, 'E', 'X', 'A', 'M', 'P', 'L', 'E', 0};  /* allowed.test CNAME A.EXAMPLE */
	uint8_t a[256];
	struct dns_addr addrs[4];
	size_t n = sizeof(query) + sizeof(rrs);

	memcpy(a, query, sizeof(query));
	a[2] = 0x81;
	a[7] = 3;
	memcpy(a + sizeof(query), rrs, sizeof(rrs));
	assert_int_equal(dns_answers(a, n, "allowed.test", addrs, 4), 1);
	assert_int_equal(addrs[0].addr[3], 9);
	/* Without the first link, b.example is nothing to allowed.test. */
	a[7] = 2;
	assert_int_equal(dns_answers(a, sizeof(query) + 48, "allowed.test", addrs, 4), 0);
}

static void a_ttl_is_capped(void **state)
{
	/* allowed.test A 10.99.0.4, TTL 600000 s. */
	static const uint8_t big[] = {0xc0, 12, 0, 1, 0, 1, 0, 0x09, 0x27, 0xc0,
				      0, 4, 10, 99, 0, 4};
	uint8_t a[256];
	size_t n = answer(a);
	struct dns_addr addrs[4];

	n = add_rr(a, n, big, sizeof(big));
	assert_int_equal(dns_answers(a, n, "allowed.test", addrs, 4), 3);
	assert_int_equal(addrs[2].addr[3], 4);
	assert_int_equal(addrs[2].ttl, DNS_TTL_MAX);
	assert_int_equal(DNS_TTL_MAX, 3600);
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
	    cmocka_unit_test(queries_of_another_shape_are_refused),
	    cmocka_unit_test(nxdomain_keeps_the_id_and_question),
	    cmocka_unit_test(the_upstream_query_holds_the_question_alone),
	    cmocka_unit_test(an_answer_gives_its_addresses_and_ttls),
	    cmocka_unit_test(addresses_of_other_names_are_left_out),
	    cmocka_unit_test(a_cname_chain_leads_to_addresses_in_any_case_and_order),
	    cmocka_unit_test(a_ttl_is_capped),
	    cmocka_unit_test(allowed_answers_become_set_elements_for_their_ttl),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
