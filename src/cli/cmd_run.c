#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "box/box.h"
#include "box/store.h"
#include "cli/boxcmd.h"
#include "cli/cli.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "net/allow.h"
#include "net/pasta.h"
#include "policy/policy.h"
#include "common/banned.h"

static void run_help(void)
{
	printf("usage: hutch run [OPTIONS] [--] COMMAND [ARG...]\n\n"
	       "Run COMMAND in a box: it sees the host's files, but everything it\n"
	       "creates, changes, deletes or renames lands in the box's store.\n\n"
	       "  -b, --box NAME          the box to use (default: %s); made on first use\n"
	       "  -r, --root              be uid 0 inside the box (for installers)\n"
	       "  -p, --profile NAME      read options from profile NAME (a box remembers it)\n"
	       "      --hide PATH         make PATH invisible inside the box\n"
	       "      --read-only PATH    no writes to PATH, not even into the box\n"
	       "      --direct PATH       writes to PATH go straight to the host\n"
	       "      --no-default-hide   do not hide ~/.ssh, ~/.aws and the other secrets\n"
	       "      --private-tmp       give the box an empty /tmp of its own, not the host's\n"
	       "      --deny-exec PATTERN do not let the box start programs matching PATTERN\n"
	       "      --allow DEST        let the box connect to DEST only (repeatable): a DNS\n"
	       "                          name, an address or a CIDR block ([IPv6]), :PORT or not\n"
	       "      --net MODE          the box's network: none (loopback only, the default)\n"
	       "                          or user (the host's network through pasta)\n"
	       "      --publish [ADDR:]HOSTPORT:BOXPORT[/udp]\n"
	       "                          the host's ADDR:HOSTPORT (default 127.0.0.1) reaches\n"
	       "                          the box's BOXPORT (implies --net user)\n"
	       "      --host-port PORT    the host's 127.0.0.1:PORT is reachable from the box\n"
	       "                          (implies --net user; no other host loopback port is)\n"
	       "      --seccomp MODE      syscall filter: default, strict or off\n"
	       "      --memory SIZE       memory limit (e.g. 512M; SIZE always needs a unit)\n"
	       "      --cpus N            CPU limit (e.g. 1.5)\n"
	       "      --pids N            process limit\n"
	       "      --timeout DURATION  kill the box after DURATION (e.g. 30s, 5m)\n"
	       "      --max-file-size SIZE   largest file a program may write\n"
	       "      --max-open-files N     most files a program may have open\n"
	       "  -v, --verbose           say what is in force\n"
	       "  -h, --help              show this help\n\n"
	       "exit status: the command's; 128+N if signal N killed it; 124 if --timeout\n"
	       "ended it; 125 if hutch failed; 126 if the command cannot be executed;\n"
	       "127 if it is not found\n",
	       BOX_DEFAULT_NAME);
}

enum {
	OPT_HIDE = 256,
	OPT_READ_ONLY,
	OPT_DIRECT,
	OPT_NO_DEFAULT_HIDE,
	OPT_DENY_EXEC,
	OPT_SECCOMP,
	OPT_MEMORY,
	OPT_CPUS,
	OPT_PIDS,
	OPT_TIMEOUT,
	OPT_MAX_FILE_SIZE,
	OPT_MAX_OPEN_FILES,
	OPT_PRIVATE_TMP,
	OPT_ALLOW,
	OPT_NET,
	OPT_PUBLISH,
	OPT_HOST_PORT,
};

static void add_path(struct strlist *l, const char *opt, const char *arg)
{
	char *in[] = {(char *)arg, NULL};
	char **paths;

	if (!*arg)
		usage_error("run ", "option '--%s' needs a path", opt);
	paths = boxcmd_paths(1, in);
	strlist_add(l, paths[0]);
	boxcmd_paths_free(paths);
}

int cmd_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"box", required_argument, NULL, 'b'},
		{"root", no_argument, NULL, 'r'},
		{"profile", required_argument, NULL, 'p'},
		{"hide", required_argument, NULL, OPT_HIDE},
		{"read-only", required_argument, NULL, OPT_READ_ONLY},
		{"direct", required_argument, NULL, OPT_DIRECT},
		{"no-default-hide", no_argument, NULL, OPT_NO_DEFAULT_HIDE},
		{"deny-exec", required_argument, NULL, OPT_DENY_EXEC},
		{"seccomp", required_argument, NULL, OPT_SECCOMP},
		{"memory", required_argument, NULL, OPT_MEMORY},
		{"cpus", required_argument, NULL, OPT_CPUS},
		{"pids", required_argument, NULL, OPT_PIDS},
		{"timeout", required_argument, NULL, OPT_TIMEOUT},
		{"max-file-size", required_argument, NULL, OPT_MAX_FILE_SIZE},
		{"max-open-files", required_argument, NULL, OPT_MAX_OPEN_FILES},
		{"private-tmp", no_argument, NULL, OPT_PRIVATE_TMP},
		{"allow", required_argument, NULL, OPT_ALLOW},
		{"net", required_argument, NULL, OPT_NET},
		{"publish", required_argument, NULL, OPT_PUBLISH},
		{"host-port", required_argument, NULL, OPT_HOST_PORT},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct box_run_opts opts = {.name = BOX_DEFAULT_NAME};
	/* Command-line values, applied over the profile's once it is read. */
	struct policy cli = {.seccomp = FILTER_DEFAULT};
	bool seccomp_set = false;
	struct net_publish pub;
	struct error err;
	uint16_t port;
	int c, r = 0;

	opterr = 0;
	/* '+': options end at the command, so its own options stay its own. */
	while ((c = getopt_long(argc, argv, "+:b:rp:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			opts.name = optarg;
			break;
		case 'r':
			opts.as_root = true;
			break;
		case 'p':
			free(cli.profile);
			cli.profile = xstrdup(optarg);
			break;
		case 'v':
			cli.verbose = true;
			break;
		case OPT_HIDE:
			add_path(&cli.hide, "hide", optarg);
			break;
		case OPT_READ_ONLY:
			add_path(&cli.read_only, "read-only", optarg);
			break;
		case OPT_DIRECT:
			add_path(&cli.direct, "direct", optarg);
			break;
		case OPT_NO_DEFAULT_HIDE:
			cli.no_default_hide = true;
			break;
		case OPT_DENY_EXEC:
			if (!*optarg)
				usage_error("run ", "option '--deny-exec' needs a pattern");
			strlist_add(&cli.deny_exec, optarg);
			break;
		case OPT_ALLOW: {
			struct allow_rule rule;
			r = allow_parse(optarg, &rule, &err);
			if (r == 0)
				strlist_add(&cli.allow, optarg);
			break;
		}
		case OPT_SECCOMP:
			r = parse_seccomp(optarg, &cli.seccomp, &err);
			seccomp_set = true;
			break;
		case OPT_MEMORY:
			r = parse_size("--memory", optarg, &cli.memory, &err);
			break;
		case OPT_CPUS:
			r = parse_cpus(optarg, &cli.cpus_milli, &err);
			break;
		case OPT_PIDS:
			r = parse_count(optarg, &cli.pids, &err);
			break;
		case OPT_TIMEOUT:
			r = parse_duration_ms(optarg, &cli.timeout_ms, &err);
			break;
		case OPT_MAX_FILE_SIZE:
			r = parse_size("--max-file-size", optarg, &cli.max_file_size, &err);
			break;
		case OPT_MAX_OPEN_FILES:
			r = parse_count(optarg, &cli.max_open_files, &err);
			break;
		case OPT_PRIVATE_TMP:
			cli.private_tmp = true;
			break;
		case OPT_NET:
			r = parse_net(optarg, &cli.net, &err);
			break;
		case OPT_PUBLISH:
			r = net_publish_parse(optarg, &pub, &err);
			if (r == 0)
				strlist_add(&cli.publish, optarg);
			break;
		case OPT_HOST_PORT:
			r = net_host_port_parse(optarg, &port, &err);
			if (r == 0)
				strlist_add(&cli.host_port, optarg);
			break;
		case 'h':
			run_help();
			return 0;
		case ':':
			usage_error("run ", "option '%s' needs a value", argv[optind - 1]);
		default:
			usage_error("run ", "unknown option '%s'", argv[optind - 1]);
		}
		if (r < 0) {
			error_print(&err);
			return EXIT_HUTCH_FAILED;
		}
	}
	if (optind >= argc)
		usage_error("run ", "missing command to run");
	opts.argv = argv + optind;
	opts.policy = &cli;
	opts.seccomp_set = seccomp_set;
	r = run_in_box(&opts);
	policy_release(&cli);
	return r;
}

int run_in_box(const struct box_run_opts *opts)
{
	struct box_run_opts run = *opts;
	_cleanup_free_ char *profile = NULL;
	_cleanup_free_ char *remembered = NULL;
	struct policy policy = {0};
	struct store store;
	struct error err;
	int status;

	if (box_name_check(opts->name, &err) < 0 || store_init(&store, &err) < 0) {
		error_print(&err);
		return EXIT_HUTCH_FAILED;
	}
	remembered = opts->policy && opts->policy->profile ? NULL
								  : store_box_profile(&store, opts->name);
	struct policy_sources sources = {
		.cli = opts->policy,
		.seccomp_set = opts->seccomp_set,
		.remembered = remembered,
		.home = getenv("HOME"),
	};
	if (policy_build(&sources, &policy, &profile, &err) < 0) {
		error_print(&err);
		policy_release(&policy);
		store_release(&store);
		return EXIT_HUTCH_FAILED;
	}
	/*
	 * Before anything is made: a missing pasta or /dev/net/tun is one clear
	 * line, and so is a port taken for a new box (an idle box's own pasta
	 * may hold its ports; it checks them itself).
	 */
	if (policy.net == NET_USER) {
		_cleanup_free_ char *pasta = NULL;
		struct pasta_config cfg;
		int r = pasta_check(&pasta, &err);
		if (r == 0 && !store_box_exists(&store, opts->name)) {
			r = pasta_config_parse(&cfg, policy.publish.v, policy.publish.n,
					       policy.host_port.v, policy.host_port.n, &err);
			if (r == 0)
				r = pasta_ports_free(&cfg, &err);
			pasta_config_release(&cfg);
		}
		if (r < 0) {
			error_print(&err);
			policy_release(&policy);
			store_release(&store);
			return EXIT_HUTCH_FAILED;
		}
	}
	/* A box that exists was made on a filesystem that passed the check. */
	if ((!store_box_exists(&store, opts->name) && store_check_fs(&store, &err) < 0) ||
	    store_create(&store, &err) < 0) {
		error_print(&err);
		policy_release(&policy);
		store_release(&store);
		return EXIT_HUTCH_FAILED;
	}
	run.policy = &policy;
	status = box_run(&store, &run, &err);
	if (status < 0) {
		error_print(&err);
		status = EXIT_HUTCH_FAILED;
	} else if (opts->policy && opts->policy->profile) {
		store_box_remember_profile(&store, opts->name, opts->policy->profile);
	}
	policy_release(&policy);
	store_release(&store);
	return status;
}
