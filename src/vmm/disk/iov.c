/* Walking and cutting scatter-gather lists (iov.h). */
#include <stdint.h>
#include <string.h>

#include "vmm/disk/iov.h"
#include "common/banned.h"

size_t iov_length(const struct iovec *iov, unsigned n)
{
	size_t len = 0;

	for (unsigned i = 0; i < n; i++) {
		if (iov[i].iov_len > SIZE_MAX - len)
			return SIZE_MAX;
		len += iov[i].iov_len;
	}
	return len;
}

/*
 * The next piece of c, at most len bytes, and c moved past it: its address
 * in *base; 0 when c has no more (entries of length 0 are skipped).
 */
static size_t next_piece(struct iov_cursor *c, size_t len, uint8_t **base)
{
	size_t k;

	while (c->n > 0 && c->skip == c->iov[0].iov_len) {
		c->iov++;
		c->n--;
		c->skip = 0;
	}
	if (c->n == 0 || len == 0)
		return 0;
	k = c->iov[0].iov_len - c->skip;
	if (k > len)
		k = len;
	*base = (uint8_t *)c->iov[0].iov_base + c->skip;
	c->skip += k;
	return k;
}

size_t iov_take(struct iov_cursor *c, size_t len, struct iovec *list, unsigned *cnt,
		unsigned max)
{
	size_t done = 0;

	while (done < len) {
		struct iov_cursor before = *c;
		uint8_t *base;
		size_t k = next_piece(c, len - done, &base);
		struct iovec *last = *cnt ? &list[*cnt - 1] : NULL;

		if (k == 0)
			break;
		if (last && (uint8_t *)last->iov_base + last->iov_len == base) {
			last->iov_len += k;
		} else if (*cnt < max) {
			list[(*cnt)++] = (struct iovec){.iov_base = base, .iov_len = k};
		} else {
			*c = before; /* the list is full: the piece stays in c */
			break;
		}
		done += k;
	}
	return done;
}

size_t iov_copy_out(struct iov_cursor *c, void *buf, size_t len)
{
	uint8_t *out = buf, *base;
	size_t done = 0, k;

	while ((k = next_piece(c, len - done, &base)) > 0) {
		memcpy(out + done, base, k);
		done += k;
	}
	return done;
}

size_t iov_copy_in(struct iov_cursor *c, const void *buf, size_t len)
{
	const uint8_t *in = buf;
	uint8_t *base;
	size_t done = 0, k;

	while ((k = next_piece(c, len - done, &base)) > 0) {
		memcpy(base, in + done, k);
		done += k;
	}
	return done;
}

size_t iov_zero(struct iov_cursor *c, size_t len)
{
	uint8_t *base;
	size_t done = 0, k;

	while ((k = next_piece(c, len - done, &base)) > 0) {
		memset(base, 0, k);
		done += k;
	}
	return done;
}
