/* What a run tells its user about the box: -v's account, and warnings before the program runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "box/box_internal.h"
#include "box/fsplan.h"
#include "box/kernel.h"
#include "common/cleanup.h"
#include "common/error.h"
#include "common/util.h"
#include "net/pasta.h"
#include "common/banned.h"

/* -v: what of the kernel features a box uses is not in force here, and what does instead. */
static void say_kernel_gaps(const char *name)
{
	_cleanup_free_ char *gaps = kernel_gaps_describe();
	char *save = NULL;

	if (!*gaps) {
		note("box '%s': kernel: every feature hutch uses is in force", name);
		return;
	}
	for (char *line = strtok_r(gaps, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		note("box '%s': kernel: %s", name, line);
}

/* -v: the network in force. */
static void box_say_net(const char *name, const struct policy *p)
{
	struct pasta_config cfg;
	struct error err;
	char what[96];

	if (p->net != NET_USER) {
		note("box '%s': network: none, loopback only (--net none)", name);
		return;
	}
	if (pasta_config_parse(&cfg, p->publish.v, p->publish.n, p->host_port.v, p->host_port.n,
			       &err) < 0) {
		pasta_config_release(&cfg);
		return;
	}
	note("box '%s': network: user, through pasta: the host's networks, IPv4 and IPv6; DNS "
	     "through %s; the host's loopback %s",
	     name, NET_DNS_ADDR, cfg.nhost_ports ? "only at the ports below" : "not reachable");
	for (size_t i = 0; i < cfg.npublish; i++) {
		net_publish_describe(&cfg.publish[i], what, sizeof(what));
		note("box '%s': network: published %s", name, what);
	}
	for (size_t i = 0; i < cfg.nhost_ports; i++)
		note("box '%s': network: the host's 127.0.0.1:%u is reachable", name,
		     cfg.host_ports[i]);
	pasta_config_release(&cfg);
	/* --allow: everything else is refused by the kernel (net/net.h). */
	for (size_t i = 0; i < p->allow.n; i++)
		note("box '%s': network: limited to --allow %s%s", name, p->allow.v[i],
		     i + 1 < p->allow.n ? "" : " (all else refused and logged; DNS: these names only)");
}

void box_say_policy(const char *name, const struct policy *p, const struct limits *limits)
{
	static const char *const modes[] = {"default", "strict", "off"};

	if (p->profile)
		note("box '%s': profile '%s'", name, p->profile);
	note("box '%s': syscall filter '%s'%s", name, modes[p->seccomp],
	     p->seccomp == FILTER_OFF ? ", no supervisor"
				      : "; the supervisor logs exec, connect, bind and denials");
	note("box '%s': %zu hidden, %zu read-only, %zu direct paths, %zu --deny-exec patterns",
	     name, p->hide.n, p->read_only.n, p->direct.n, p->deny_exec.n);
	note("box '%s': limits: %s", name, limits_describe(limits));
	note("box '%s': /tmp: %s", name,
	     p->private_tmp ? "the box's own (--private-tmp)" : "the host's, copy-on-write");
	box_say_net(name, p);
	say_kernel_gaps(name);
}

/* The name of id in /etc/passwd or /etc/group (a static binary has no NSS), or NULL. */
static char *id_name(const char *file, unsigned id)
{
	struct error ignored;
	_cleanup_free_ char *text = read_file(file, 4 << 20, &ignored);
	char *save = NULL;

	for (char *line = text ? strtok_r(text, "\n", &save) : NULL; line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL, *end;
		if (!c2)
			continue;
		unsigned long v = strtoul(c2 + 1, &end, 10);
		if (end != c2 + 1 && *end == ':' && v == id)
			return xasprintf("%.*s", (int)(c1 - line), line);
	}
	return NULL;
}

void box_explain_cwd(const char *cwd)
{
	_cleanup_free_ char *first = NULL;
	struct stat st;
	size_t n = cwd ? fsplan_unmapped_files(cwd, &first, &st) : 0;

	if (!n)
		return;
	bool by_owner = st.st_uid != getuid();
	unsigned id = by_owner ? st.st_uid : st.st_gid;
	_cleanup_free_ char *name = id_name(by_owner ? "/etc/passwd" : "/etc/group", id);
	_cleanup_free_ char *more =
		n > 1 ? xasprintf(" and %zu more files there belong", n - 1) : xstrdup(" belongs");
	warn("'%s/%s'%s to %s '%s' (%u), which a box cannot map: the box can "
	     "create and remove files in '%s', but writing to or renaming these fails (EOVERFLOW)",
	     strcmp(cwd, "/") ? cwd : "", first, more, by_owner ? "user" : "group",
	     name ? name : "?", id, cwd);
}
