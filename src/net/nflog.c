/* Reading the allow-list's denials from NFLOG (net/nflog.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/nflog.h"
#include "common/cleanup.h"
#include "common/banned.h"

/* IPv6's header, TCP's or UDP's ports: all the parser reads. */
#define COPY_RANGE 64

static void put_attr(char *buf, size_t *len, uint16_t type, const void *data, uint16_t dlen)
{
	struct nlattr *a = (struct nlattr *)(buf + *len);

	a->nla_type = type;
	a->nla_len = (uint16_t)(NLA_HDRLEN + dlen);
	memcpy(buf + *len + NLA_HDRLEN, data, dlen);
	*len += NLA_ALIGN(a->nla_len);
}

static int config(int fd, uint16_t group, uint16_t type, const void *data, uint16_t dlen,
		  struct error *err)
{
	char buf[128] __attribute__((aligned(NLMSG_ALIGNTO)));
	struct nlmsghdr *nh = (struct nlmsghdr *)buf;
	struct nfgenmsg *g = NLMSG_DATA(nh);
	size_t len = NLMSG_SPACE(sizeof(*g));
	ssize_t r;

	memset(buf, 0, sizeof(buf));
	nh->nlmsg_type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG;
	nh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	g->nfgen_family = AF_UNSPEC;
	g->version = NFNETLINK_V0;
	g->res_id = htons(group);
	put_attr(buf, &len, type, data, dlen);
	nh->nlmsg_len = (uint32_t)len;
	if (send(fd, buf, len, 0) < 0)
		return error_set(err, errno, "cannot configure NFLOG");
	do
		r = recv(fd, buf, sizeof(buf), 0);
	while (r < 0 && errno == EINTR);
	if (r < (ssize_t)NLMSG_SPACE(sizeof(struct nlmsgerr)) || nh->nlmsg_type != NLMSG_ERROR)
		return error_set(err, EPROTO, "cannot configure NFLOG");
	struct nlmsgerr *e = NLMSG_DATA(nh);
	if (e->error)
		return error_set(err, -e->error, "cannot configure NFLOG group %u", group);
	return 0;
}

int nflog_open(uint16_t group, struct error *err)
{
	struct sockaddr_nl addr = {.nl_family = AF_NETLINK};
	struct nfulnl_msg_config_cmd bind_cmd = {.command = NFULNL_CFG_CMD_BIND};
	struct nfulnl_msg_config_mode mode = {.copy_range = htonl(COPY_RANGE),
					      .copy_mode = NFULNL_COPY_PACKET};
	/* Each denial at once: the kernel batches them for a second otherwise. */
	uint32_t qthresh = htonl(1);
	_cleanup_close_ int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);

	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		return error_set(err, errno, "cannot open an NFLOG socket");
	if (config(fd, group, NFULA_CFG_CMD, &bind_cmd, sizeof(bind_cmd), err) < 0 ||
	    config(fd, group, NFULA_CFG_MODE, &mode, sizeof(mode), err) < 0 ||
	    config(fd, group, NFULA_CFG_QTHRESH, &qthresh, sizeof(qthresh), err) < 0)
		return -1;
	return steal_fd(&fd);
}

static const char *proto_name(unsigned p)
{
	switch (p) {
	case IPPROTO_TCP:
		return "tcp";
	case IPPROTO_UDP:
		return "udp";
	case IPPROTO_ICMP:
		return "icmp";
	case IPPROTO_ICMPV6:
		return "ipv6-icmp";
	default:
		return "ip";
	}
}

static int parse_packet(const uint8_t *p, size_t len, struct nflog_denial *out)
{
	size_t l4;
	unsigned proto;

	if (len < 1)
		return 0;
	if ((p[0] >> 4) == 4 && len >= 20) {
		l4 = (size_t)(p[0] & 0xf) * 4;
		proto = p[9];
		out->family = AF_INET;
		inet_ntop(AF_INET, p + 16, out->address, sizeof(out->address));
	} else if ((p[0] >> 4) == 6 && len >= 40) {
		l4 = 40;
		proto = p[6];
		out->family = AF_INET6;
		inet_ntop(AF_INET6, p + 24, out->address, sizeof(out->address));
	} else {
		return 0;
	}
	out->protocol = proto_name(proto);
	out->port = -1;
	if ((proto == IPPROTO_TCP || proto == IPPROTO_UDP) && l4 >= 20 && len >= l4 + 4)
		out->port = (p[l4 + 2] << 8) | p[l4 + 3];
	return 1;
}

int nflog_parse(const void *msg, size_t len, struct nflog_denial *out)
{
	const struct nlmsghdr *nh = msg;
	const struct nlattr *a;
	size_t off;
	int got = 0;

	if (len < NLMSG_HDRLEN || nh->nlmsg_len > len || nh->nlmsg_len < NLMSG_SPACE(sizeof(struct nfgenmsg)) ||
	    nh->nlmsg_type != ((NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET))
		return 0;
	memset(out, 0, sizeof(*out));
	off = NLMSG_SPACE(sizeof(struct nfgenmsg));
	while (off + NLA_HDRLEN <= nh->nlmsg_len) {
		a = (const struct nlattr *)((const char *)msg + off);
		if (a->nla_len < NLA_HDRLEN || off + a->nla_len > nh->nlmsg_len)
			break;
		const uint8_t *data = (const uint8_t *)a + NLA_HDRLEN;
		size_t dlen = a->nla_len - NLA_HDRLEN;
		switch (a->nla_type & NLA_TYPE_MASK) {
		case NFULA_PREFIX:
			snprintf(out->prefix, sizeof(out->prefix), "%.*s",
				 (int)strnlen((const char *)data, dlen), (const char *)data);
			break;
		case NFULA_PAYLOAD:
			got = parse_packet(data, dlen, out);
			break;
		}
		off += NLA_ALIGN(a->nla_len);
	}
	return got;
}
