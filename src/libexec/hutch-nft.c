/*
 * hutch-nft: carries out nftables commands for hutch (src/net/nft.h).
 * Reads commands in nft's syntax on stdin, each ended by a NUL byte, and
 * answers each on stdout with a NUL alone (done) or nft's error text ended
 * by a NUL. Linked against libnftables (Debian libnftables-dev) because
 * hutch is static and libnftables is shared only.
 */
#include <errno.h>
#include <nftables/libnftables.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int main(void)
{
	struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	size_t cap = 65536, len = 0;
	char *buf = malloc(cap);

	if (!ctx || !buf || nft_ctx_buffer_error(ctx) < 0)
		return 1;
	for (;;) {
		ssize_t r;
		char *nul;

		if (len == cap) {
			if (cap >= (16u << 20))
				return 1;
			cap *= 2;
			buf = realloc(buf, cap);
			if (!buf)
				return 1;
		}
		r = read(STDIN_FILENO, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return 0;
		len += (size_t)r;
		while ((nul = memchr(buf, '\0', len))) {
			size_t used = (size_t)(nul - buf) + 1;
			const char *e = "";
			if (nft_run_cmd_from_buffer(ctx, buf) != 0) {
				e = nft_ctx_get_error_buffer(ctx);
				if (!e || !*e)
					e = "nft refused the rules";
			}
			if (write_all(STDOUT_FILENO, e, strlen(e) + 1) < 0)
				return 1;
			memmove(buf, buf + used, len - used);
			len -= used;
		}
	}
}
