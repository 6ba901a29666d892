/*
 * Profiles: named sets of `hutch run` options, kept in INI files so that a
 * policy can be written once and used with `hutch run --profile NAME`.
 *
 * `--profile NAME` reads the first of
 *   $XDG_CONFIG_HOME/hutch/profiles/NAME.conf  (default ~/.config/hutch/...)
 *   /etc/hutch/profiles/NAME.conf
 * that exists. NAME must not contain '/' or start with '.'.
 *
 * The format (docs/profiles.md has examples):
 *
 *   # a comment (a line starting with '#' or ';')
 *   [box]
 *   hide = ~/.ssh              paths: absolute, or starting with "~/"
 *   hide = ~/.gnupg            (= $HOME/); each line adds one path
 *   read-only = /etc
 *   direct = ~/Downloads
 *   deny-exec = /usr/bin/curl  a path, or a program name without '/'
 *   seccomp = strict           default, strict or off
 *   memory = 512M              the values `hutch run` takes, parsed by the
 *   cpus = 1.5                 same parse_* functions (policy/policy.h)
 *   pids = 100
 *   timeout = 5m
 *   max-file-size = 1G
 *   max-open-files = 256
 *
 * Keys are exactly the `hutch run` option names, all in one section, [box]
 * (a section may be repeated). The list keys (hide, read-only, direct,
 * deny-exec) accumulate, one value a line; setting any other key twice is
 * an error. Values are taken literally: no quotes, no inline comments, no
 * continuation lines. A line is at most PROFILE_LINE_MAX bytes.
 *
 * A profile is refused as a whole, with "FILE:LINE: reason" in err->msg,
 * on: an unknown section or key, a key outside [box], a bad value (the
 * parse_* message), a line that is not "key = value" or "[section]", a
 * scalar key set twice, a line too long or holding a NUL byte.
 *
 * The command line overrides a profile: callers load the profile first,
 * then apply their options over it.
 */
#ifndef HUTCH_POLICY_PROFILE_H
#define HUTCH_POLICY_PROFILE_H

#include "common/error.h"
#include "policy/policy.h"

#define PROFILE_LINE_MAX 4200 /* PATH_MAX, a key and some room */

/*
 * Fill p from profile NAME, found as above; sets p->profile to NAME. The
 * settings are added to what p already holds (lists are appended to,
 * scalars replaced). On failure p is left as it was.
 */
int profile_load(const char *name, struct policy *p, struct error *err);

#endif
