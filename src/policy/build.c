/*
 * policy_build(): the one place a run's policy is put together, for every
 * front end (the CLI's run and shell now, an OCI runtime later).
 */
#include <stdbool.h>
#include <string.h>

#include "common/util.h"
#include "policy/access.h"
#include "policy/policy.h"
#include "policy/profile.h"
#include "common/banned.h"

static bool listed(const struct strlist *l, const char *path)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i], path))
			return true;
	return false;
}

int policy_build(const struct policy_sources *src, struct policy *out, char **profile_name,
		 struct error *err)
{
	const struct policy *cli = src->cli;
	const char *profile = cli && cli->profile ? cli->profile : src->remembered;

	memset(out, 0, sizeof(*out));
	out->seccomp = FILTER_DEFAULT;
	*profile_name = NULL;
	if (profile && profile_load(profile, out, err) < 0)
		return -1;
	*profile_name = profile ? xstrdup(profile) : NULL;
	if (!cli)
		goto defaults;
	for (size_t i = 0; i < cli->hide.n; i++)
		strlist_add(&out->hide, cli->hide.v[i]);
	for (size_t i = 0; i < cli->read_only.n; i++)
		strlist_add(&out->read_only, cli->read_only.v[i]);
	for (size_t i = 0; i < cli->direct.n; i++)
		strlist_add(&out->direct, cli->direct.v[i]);
	for (size_t i = 0; i < cli->deny_exec.n; i++)
		strlist_add(&out->deny_exec, cli->deny_exec.v[i]);
	for (size_t i = 0; i < cli->allow.n; i++)
		strlist_add(&out->allow, cli->allow.v[i]);
	for (size_t i = 0; i < cli->publish.n; i++)
		strlist_add(&out->publish, cli->publish.v[i]);
	for (size_t i = 0; i < cli->host_port.n; i++)
		strlist_add(&out->host_port, cli->host_port.v[i]);
	if (cli->net != NET_UNSET)
		out->net = cli->net;
	if (src->seccomp_set)
		out->seccomp = cli->seccomp;
	out->no_default_hide |= cli->no_default_hide;
	out->private_tmp |= cli->private_tmp;
	out->verbose = cli->verbose;
#define OVERRIDE(field)                                                                            \
	if (cli->field)                                                                            \
	out->field = cli->field
	OVERRIDE(memory);
	OVERRIDE(cpus_milli);
	OVERRIDE(pids);
	OVERRIDE(timeout_ms);
	OVERRIDE(max_file_size);
	OVERRIDE(max_open_files);
#undef OVERRIDE
defaults:
	/*
	 * --publish, --host-port and --allow imply --net user (--allow: limited
	 * to what it names); with --net none they make no sense.
	 */
	if (out->net == NET_NONE && (out->publish.n || out->host_port.n || out->allow.n))
		return error_set(err, 0, "--%s needs a network, and the box has none (--net none)",
				 out->publish.n ? "publish" : out->host_port.n ? "host-port" : "allow");
	if (out->net == NET_UNSET)
		out->net = out->publish.n || out->host_port.n || out->allow.n ? NET_USER : NET_NONE;
	if (!out->no_default_hide) {
		struct strlist secrets = {0};
		access_default_hides(src->home, &secrets);
		/* A secret the user opens on purpose (--direct, --read-only) stays visible. */
		for (size_t i = 0; i < secrets.n; i++)
			if (!listed(&out->direct, secrets.v[i]) &&
			    !listed(&out->read_only, secrets.v[i]) &&
			    !listed(&out->hide, secrets.v[i]))
				strlist_add(&out->hide, secrets.v[i]);
		strlist_release(&secrets);
	}
	return 0;
}
