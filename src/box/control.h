/*
 * The box's control protocol: how a hutch process asks a box's PID 1 to
 * start a program. The hutch run that creates a box speaks it over a
 * socketpair; every later run of the same box while it is up connects to
 * the box's control socket (boxes/NAME/control) and joins: the kernel
 * refuses a second overlay on the same upper dir, and programs of one box
 * must see one another anyway.
 *
 *   init -> client   on the control socket only, at once: 'N' with the fds
 *                    of the box's user and mount namespaces (PID 1 is not
 *                    dumpable: /proc/PID/ns is closed to its user)
 *   client -> init   request: header + strings, with fds 0-2 (SCM_RIGHTS)
 *   init -> client   reply 'P' with a pidfd of the program (+ pty master),
 *                    'E' with a one-line error, 'R' when the box, idle,
 *                    ends instead (a QUIT request, or a request for another
 *                    policy or host view: the client then starts a new box),
 *                    or 'D' when the box, busy, runs another policy than the
 *                    request's: a program joins a running box only under
 *                    the policy it asked for, never under the box's
 *   client -> init   with a pty only: 'G' once the pty has its size, and
 *                    the program may start (without, it starts at once)
 *   init -> client   the exit code (int) when the program has exited
 *
 * Everything goes over SOCK_STREAM unix sockets, and both ends are the same
 * user (the store is mode 0700; init checks SO_PEERCRED anyway).
 */
#ifndef HUTCH_BOX_CONTROL_H
#define HUTCH_BOX_CONTROL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/un.h>

#include "common/error.h"

/* The tag byte of each control message (the protocol above). */
enum control_tag {
	CONTROL_MOUNT = 'M',    /* creator -> init: plan and mount all but the box's layers */
	CONTROL_LAYERS = 'O',   /* creator -> init: the last run let go of the layers; mount them */
	CONTROL_NS = 'N',       /* init -> client: fds of the box's user and mount namespaces */
	CONTROL_PROGRAM = 'P',  /* init -> client: the program's pidfd (+ pty master) */
	CONTROL_ERROR = 'E',    /* init -> client: a one-line error */
	CONTROL_RESTART = 'R',  /* init -> client: the idle box ends instead; start a new one */
	CONTROL_DIFFERS = 'D',  /* init -> client: the busy box's policy is not the run's: how */
	CONTROL_GO = 'G',       /* client -> init: the pty has its size; the program may start */
	CONTROL_EXIT = 'X',     /* init -> client: the program's exit code (int) */
};

#define CONTROL_MAX_FDS 3
#define CONTROL_MAX_REQUEST (4u << 20) /* argv + environment, bytes */

enum request_flags {
	REQUEST_PTY = 1 << 0,  /* give the program a pty of the box's own */
	REQUEST_ROOT = 1 << 1, /* the caller asked for --root */
	REQUEST_QUIT = 1 << 2, /* end the box now if it runs nothing (commit, reset, rm) */
};

struct request {
	uint32_t flags;
	uint32_t umask;
	uint64_t fingerprint; /* of the run's policy and host view (box.c) */
	uint64_t plan_hash;   /* a joining run's fsplan_hash_host(), else 0 */
	uint64_t policy_hash; /* of the run's policy alone: policy_hash() */
	uint64_t net_hash;    /* of the run's network alone: policy_net_hash() */
	char *cwd;
	char **argv; /* NULL-terminated */
	char **envp; /* NULL-terminated */
	int fds[CONTROL_MAX_FDS]; /* stdin, stdout, stderr; -1 if not sent */
	char *blob;  /* storage behind cwd/argv/envp when received */
};

/* Send a request with this process's fds 0-2. */
int request_send(int sock, const struct request *req, struct error *err);
/* Receive one; the fds received are O_CLOEXEC. */
int request_recv(int sock, struct request *req, struct error *err);
void request_release(struct request *req);

/*
 * The request's wire format, apart from the socket so that the fuzzer
 * (tests/fuzz/fuzz_control.c) and the unit tests reach what request_recv
 * does with the bytes: a header of REQUEST_HEADER_SIZE bytes, then the
 * header's len bytes of NUL-terminated strings (cwd, argv, envp).
 */
#define REQUEST_HEADER_SIZE 56
/* Check a header; *len is then the length of the strings that follow it. */
int request_header_len(const void *header, uint32_t *len, struct error *err);
/*
 * Fill req from header and the strings in req->blob (as long as the header
 * says); cwd, argv and envp point into the blob. request_release frees what
 * it holds, also after a failure.
 */
int request_parse(struct request *req, const void *header, struct error *err);

/* "/proc/self/fd/N/control", the box's control socket: sun_path is short, a store path need not be. */
void control_addr(int box_dirfd, struct sockaddr_un *addr);
/* Connect to the box's control socket; -1 when no box is up. */
int control_connect(int box_dirfd);

/*
 * If the box in box_dir is up but runs nothing (it lingers after its last
 * program, see box/init.h), make it end now. Returns once it said so, or at
 * once when no box answers.
 */
void control_end_idle(const char *box_dir);

/* Send a message of one tag byte plus data, with up to 2 fds. */
int control_send(int sock, char tag, const void *data, size_t len, const int *fds, size_t nfds);
/*
 * Receive one message sent by control_send into buf (len at most cap);
 * returns its length (without the tag) and stores the tag and fds.
 * Returns -1 on error or end of stream.
 */
ssize_t control_recv(int sock, char *tag, void *buf, size_t cap, int *fds, size_t *nfds);

#endif
