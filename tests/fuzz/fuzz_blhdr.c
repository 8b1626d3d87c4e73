/*
 * fuzz_blhdr — a Barev pipe's header phase in barevlink alone: no gateway,
 * no SQLite, no component link (fuzz_pipehdr runs the same bytes through
 * the whole gateway, at ~3 ms an input).
 *
 * Once per process: a network namespace of our own (when root) with
 * alice's and bob's addresses on loopback, the event base, barevlink with
 * the identity alice@200:1::1 listening on its port and the contact
 * bob@200:2::2 on its allowlist.  Per input: bob connects over TCP from
 * his address, so barevlink's listener takes the connection the way it
 * takes every other (allowlist, per-address flood bound, the permit()
 * callback), bob writes the input and the loop runs until barevlink has
 * either brought the pipe up or dropped it; then bob hangs up if he has
 * not, and the input ends once barevlink has freed the pipe.  Without
 * root (no namespace, so nothing can come from bob's address) bob's end
 * is a socketpair handed to bl_pipe_inbound(), what the listener does
 * after its checks, as fuzz_pipe does.
 *
 * Input: [mode] then everything bob sends, header included.
 *   bit 0: bob keeps his side open after the input (else EOF after it);
 *     then barevlink's own timeouts end an input that stops short
 *   bit 1: a pause after the first write, long enough for the pipe's own
 *     timer (the silent initiator's: we send our header first, BAREV.md §2)
 *   bits 2-7 (s): 0 = bob writes the input at once; else in two writes,
 *     split after byte 4 * s (inside the header, mostly).  Only one split:
 *     every write costs system calls, and how the parser takes a stream in
 *     pieces is fuzz_xmlstream's business; here what matters is barevlink's
 *     state when a header stops short, and a pause there.
 *
 * Timeouts run in virtual time, as in fuzz_socks5: barevlink keeps its
 * real ones and the harness fires the earliest pending timer itself once
 * no event is active and no socket is ready.  Both ends are in this
 * process on loopback, where a byte is delivered within the send() that
 * wrote it, so that is the moment a real timer would have been next.
 *
 * Checked per input: pipe_up at most once and only with bob, stanzas only
 * while up, pipe_down exactly once after an up; afterwards no pipe is left,
 * bob's address counts no pending handshake, and the base holds exactly
 * the events it held before the input.
 */
#include <arpa/inet.h>
#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "barevlink.h"
#include "vtime.h"
#include "log.h"
#include "xmlstream.h"
/* the barevlink internals a harness needs to see that nothing is left */
#include "../../barevlink/internal.h"

#define ALICE_ADDR	"200:1::1"
#define BOB_ADDR	"200:2::2"
#define ALICE		1	/* identity id */
#define BOB		2	/* contact id */
#define MAX_STEPS	100000	/* steps of one input: a hang past this */

/* Linux's <linux/ipv6.h> struct in6_ifreq, which clashes with glibc's
 * <netinet/in.h> */
/*
 * An address on lo, usable at once: with IFA_F_NODAD the kernel never marks
 * it tentative.  (SIOCSIFADDR left it tentative until the DAD work item
 * ran, so bob's bind() right after failed now and then: EADDRNOTAVAIL.)
 * 0, or -1.
 */
static int
blhdr_addr_add(const char *text)
{
	struct {
		struct nlmsghdr nh;
		struct ifaddrmsg ifa;
		struct rtattr rta;
		struct in6_addr addr;
		struct rtattr rfl;
		uint32_t flags;
	} req;
	struct {
		struct nlmsghdr nh;
		struct nlmsgerr err;
	} ack;
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	int fd, rc = -1;

	memset(&req, 0, sizeof req);
	req.nh.nlmsg_len = sizeof req;
	req.nh.nlmsg_type = RTM_NEWADDR;
	req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
	req.ifa.ifa_family = AF_INET6;
	req.ifa.ifa_prefixlen = 128;
	req.ifa.ifa_flags = IFA_F_NODAD;
	req.ifa.ifa_index = if_nametoindex("lo");
	req.rta.rta_type = IFA_LOCAL;
	req.rta.rta_len = RTA_LENGTH(sizeof req.addr);
	req.rfl.rta_type = IFA_FLAGS;
	req.rfl.rta_len = RTA_LENGTH(sizeof req.flags);
	req.flags = IFA_F_NODAD;
	if (inet_pton(AF_INET6, text, &req.addr) != 1)
		return -1;
	if ((fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE)) == -1)
		return -1;
	if (sendto(fd, &req, sizeof req, 0, (struct sockaddr *)&kernel,
	    sizeof kernel) == (ssize_t)sizeof req &&
	    recv(fd, &ack, sizeof ack, 0) >= (ssize_t)sizeof ack &&
	    ack.nh.nlmsg_type == NLMSG_ERROR && ack.err.error == 0)
		rc = 0;
	close(fd);
	return rc;
}

struct blhdr {
	struct event_base *base;
	struct bl *bl;
	struct in6_addr alice, bob;
	uint16_t port;
	int tcp;		/* bob connects over TCP (own namespace) */
	int base_events;	/* on the base with no pipe: the listener */
	/* per input */
	int up, down, permits, stanzas;
	int fd;			/* bob's socket, -1 once he hung up */
};

static struct blhdr B;

static void
blhdr_die(const char *what)
{
	fprintf(stderr, "fuzz_blhdr: %s\n", what);
	abort();
}

static void
blhdr_pipe_up(void *arg, int64_t ident, int64_t contact)
{
	struct blhdr *b = arg;

	if (ident != ALICE || contact != BOB || b->up++ != 0)
		blhdr_die("pipe_up twice or for someone else");
}

static void
blhdr_pipe_down(void *arg, int64_t ident, int64_t contact, const char *why)
{
	struct blhdr *b = arg;

	if (getenv("FUZZ_VERBOSE") != NULL)
		fprintf(stderr, "pipe down: %s\n", why);
	if (ident != ALICE || contact != BOB || b->up != 1 || b->down++ != 0)
		blhdr_die("pipe_down without pipe_up, or twice");
}

static void
blhdr_stanza(void *arg, int64_t ident, int64_t contact, xmpp_stanza_t *st)
{
	struct blhdr *b = arg;
	char *xml;
	size_t len;

	if (ident != ALICE || contact != BOB || b->up != 1 || b->down != 0)
		blhdr_die("a stanza from a pipe that is not up");
	/* what the gateway does first with most of them */
	if ((xml = xs_serialize_str(st, 0, &len)) == NULL)
		blhdr_die("serialize");
	free(xml);
	b->stanzas++;
}

/* the gateway's policy: asked once per connection, about alice and bob */
static int
blhdr_permit(void *arg, const char *local, const char *remote)
{
	struct blhdr *b = arg;

	if (strcmp(local, ALICE_ADDR) != 0 || strcmp(remote, BOB_ADDR) != 0)
		blhdr_die("permit() asked about someone else");
	b->permits++;
	return 1;
}

/*
 * A network namespace with only loopback, alice's and bob's addresses on
 * it: bob can connect from his own address, and nothing leaves the
 * machine.  TIME_WAIT ports are reused after a second and the whole port
 * range is ours: millions of connections from one address to one port.
 * 0, or -1 with the reason in `why` (not root, say): then bob uses a
 * socketpair, which needs no network at all.
 */
/*
 * Is the namespace ready?  The addresses are there at once (NODAD), but
 * their local routes come with the kernel's address work item: a SYN sent
 * before is dropped and retried a second later.  One connection from bob
 * to alice, blocking and bounded, waits for exactly that.  0, or -1.
 */
static int
blhdr_netns_ready(void)
{
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons(9) };
	struct sockaddr_in6 b = { .sin6_family = AF_INET6 };
	struct timeval bound = { 10, 0 };
	int l, c = -1, rc = -1;

	if (inet_pton(AF_INET6, ALICE_ADDR, &a.sin6_addr) != 1 ||
	    inet_pton(AF_INET6, BOB_ADDR, &b.sin6_addr) != 1 ||
	    (l = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (bind(l, (struct sockaddr *)&a, sizeof a) == 0 && listen(l, 1) == 0 &&
	    (c = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0)) != -1 &&
	    setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &bound, sizeof bound) == 0 &&
	    bind(c, (struct sockaddr *)&b, sizeof b) == 0 &&
	    connect(c, (struct sockaddr *)&a, sizeof a) == 0)
		rc = 0;
	if (c != -1)
		close(c);
	close(l);
	return rc;
}

static int
blhdr_netns(const char **why)
{
	static const char *const addrs[] = { ALICE_ADDR, BOB_ADDR };
	static const struct { const char *path, *val; } sysctls[] = {
		{ "/proc/sys/net/ipv4/tcp_tw_reuse", "1" },
		{ "/proc/sys/net/ipv4/ip_local_port_range", "1024 65535" },
	};
	struct ifreq ifr;
	size_t i;
	int fd = -1, sfd, ok;

	*why = "unshare(CLONE_NEWNET)";
	if (unshare(CLONE_NEWNET) == -1)
		return -1;
	*why = "bringing loopback up";
	memset(&ifr, 0, sizeof ifr);
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
	if ((fd = socket(AF_INET6, SOCK_DGRAM, 0)) == -1 ||
	    ioctl(fd, SIOCGIFFLAGS, &ifr) == -1)
		goto fail;
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) == -1)
		goto fail;
	*why = "putting alice's and bob's addresses on lo";
	for (i = 0; i < sizeof addrs / sizeof addrs[0]; i++)
		if (blhdr_addr_add(addrs[i]) == -1)
			goto fail;
	for (i = 0; i < sizeof sysctls / sizeof sysctls[0]; i++) {
		*why = sysctls[i].path;
		if ((sfd = open(sysctls[i].path, O_WRONLY)) == -1)
			goto fail;
		ok = write(sfd, sysctls[i].val, strlen(sysctls[i].val)) ==
		    (ssize_t)strlen(sysctls[i].val);
		close(sfd);
		if (!ok)
			goto fail;
	}
	*why = "a first connection from bob to alice";
	if (blhdr_netns_ready() == -1)
		goto fail;
	close(fd);
	return 0;
fail:
	if (fd != -1)
		close(fd);
	return -1;
}

static void
blhdr_build(struct blhdr *b)
{
	static const struct bl_events ev = {
		.pipe_up = blhdr_pipe_up,
		.pipe_down = blhdr_pipe_down,
		.stanza = blhdr_stanza,
		.permit = blhdr_permit,
	};
	struct bl_stats st;
	const char *why;

	log_set_level(getenv("FUZZ_VERBOSE") ? LOG_LVL_DEBUG : LOG_LVL_ERROR);
	if (!(b->tcp = blhdr_netns(&why) == 0))
		fprintf(stderr, "fuzz_blhdr: no network namespace of our own "
		    "(%s failed): bob's end is a socketpair\n", why);
	/* alone in our namespace the port is Barev's own; else one of this
	 * process's, so parallel fuzzers do not fight over it */
	b->port = b->tcp ? 1337 : (uint16_t)(20000 + getpid() % 20000);
	if (xs_init() == -1 || (b->base = event_base_new()) == NULL)
		blhdr_die("setup");
	/* the defaults, the production values: every timer is virtual */
	if ((b->bl = bl_new(b->base, NULL, &ev, b)) == NULL ||
	    bl_identity_add(b->bl, ALICE, "alice", ALICE_ADDR, b->port) == -1 ||
	    bl_contact_add(b->bl, ALICE, BOB, "bob", BOB_ADDR, 1337) == -1)
		blhdr_die("barevlink setup");
	bl_get_stats(b->bl, &st);
	if (st.listeners != 1)
		blhdr_die("alice's listener did not bind");
	if (inet_pton(AF_INET6, ALICE_ADDR, &b->alice) != 1 ||
	    inet_pton(AF_INET6, BOB_ADDR, &b->bob) != 1)
		blhdr_die("addresses");
	b->base_events = event_base_get_num_events(b->base,
	    EVENT_BASE_COUNT_ADDED | EVENT_BASE_COUNT_ACTIVE);
}

/* bob reads what he is sent and drops it; hangs up on EOF or an error */
static void
bob_read(struct blhdr *b)
{
	char buf[16384];
	ssize_t n;

	if (b->fd == -1)
		return;
	while ((n = recv(b->fd, buf, sizeof buf, 0)) > 0)
		if (getenv("FUZZ_VERBOSE") != NULL)
			fprintf(stderr, "to bob: %.*s\n", (int)n, buf);
	if (n == 0 || errno != EAGAIN) {
		close(b->fd);
		b->fd = -1;
	}
}

static void
bob_ready(void *arg)
{
	bob_read(arg);
}

/*
 * One step (vtime.c): run what is ready; when nothing is (no active event,
 * no watched socket ready, nothing for bob to read) and `fire`, fire the
 * earliest timeout as if its time had come.  0, or -1 when nothing was
 * ready and no timer was left to fire.
 */
static int
blhdr_step(struct blhdr *b, int fire)
{
	return fz_vtime_step(b->base, 0, fire, b->fd, bob_ready, b);
}

/* run what is ready until nothing is, firing no timer */
static void
blhdr_settle(struct blhdr *b)
{
	int n = 0;

	while (blhdr_step(b, 0) == 0)
		if (++n > MAX_STEPS)
			blhdr_die("the loop never went quiet");
}

/*
 * Bob pauses with his header unfinished: timers fire in their order until
 * the pipe's own has (the silent initiator's, 2 s: we send our header
 * first), unless the header phase ends before.
 */
static void
blhdr_pause(struct blhdr *b)
{
	struct bl_pipe *p = TAILQ_FIRST(&b->bl->pipes);
	int n = 0;

	while (p != NULL && TAILQ_FIRST(&b->bl->pipes) == p &&
	    p->state == BL_P_HANDSHAKE && evtimer_pending(&p->timer, NULL)) {
		if (blhdr_step(b, 1) == -1)
			blhdr_die("a pipe in its handshake has no timer");
		if (++n > MAX_STEPS)
			blhdr_die("the pause never ended");
	}
}

/* bob connects; returns once barevlink holds his connection */
static void
bob_connect(struct blhdr *b)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6 };
	unsigned long long accepted;
	struct bl_stats st;
	int sv[2], n = 0;

	if (!b->tcp) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == -1)
			blhdr_die("socketpair");
		/* what listener_accept() does for an allowlisted source */
		if (!blhdr_permit(b, ALICE_ADDR, BOB_ADDR) ||
		    bl_pipe_inbound(TAILQ_FIRST(&b->bl->listeners), sv[1],
		    &b->bob) == NULL)
			blhdr_die("bl_pipe_inbound");
		b->fd = sv[0];
		return;
	}
	bl_get_stats(b->bl, &st);
	accepted = st.accepted;
	if ((b->fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0)) == -1)
		blhdr_die("socket");
	sa.sin6_addr = b->bob;
	if (bind(b->fd, (struct sockaddr *)&sa, sizeof sa) == -1)
		blhdr_die("bob cannot bind his address");
	sa.sin6_addr = b->alice;
	sa.sin6_port = htons(b->port);
	if (connect(b->fd, (struct sockaddr *)&sa, sizeof sa) == -1 &&
	    errno != EINPROGRESS)
		blhdr_die("bob cannot connect");
	/* the accept, bounded: a missed one would leak into the next input */
	while (bl_get_stats(b->bl, &st), st.accepted == accepted) {
		struct pollfd pfd = { .fd = b->fd, .events = POLLOUT };

		(void)poll(&pfd, 1, 10);
		(void)event_base_loop(b->base, EVLOOP_NONBLOCK);
		if (++n > 3000)
			blhdr_die("barevlink never accepted bob's connection");
	}
}

/* write data[off, off + len) as far as the socket takes it; the new off */
static size_t
bob_write(struct blhdr *b, const uint8_t *data, size_t off, size_t len)
{
	ssize_t n;

	while (b->fd != -1 && len > 0) {
		n = send(b->fd, data + off, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN)
				break;
			return off + len;	/* barevlink hung up */
		}
		off += (size_t)n;
		len -= (size_t)n;
	}
	return off;
}

/* the chunk from off: all of it with bob gone; waits while the socket is full */
static void
bob_send(struct blhdr *b, const uint8_t *data, size_t off, size_t len)
{
	size_t end = off + len;
	int n = 0;

	for (;;) {
		if (b->fd == -1)
			return;
		off = bob_write(b, data, off, end - off);
		blhdr_settle(b);
		if (off >= end)
			return;
		if (++n > MAX_STEPS)
			blhdr_die("barevlink stopped reading");
	}
}

static void
blhdr_check_clean(struct blhdr *b)
{
	struct bl_allow *a = bl_allow_find(b->bl, &b->bob);
	int n;

	if (!TAILQ_EMPTY(&b->bl->pipes) || !TAILQ_EMPTY(&b->bl->reap))
		blhdr_die("a pipe was left after the input");
	if (a == NULL || a->pending != 0)
		blhdr_die("bob's address still counts a handshake");
	if (bl_contact_state(b->bl, BOB) != BL_PIPE_NONE)
		blhdr_die("bob's contact still has a pipe");
	n = event_base_get_num_events(b->base,
	    EVENT_BASE_COUNT_ADDED | EVENT_BASE_COUNT_ACTIVE);
	if (n != b->base_events) {
		fprintf(stderr, "fuzz_blhdr: %d events on the base after the "
		    "input, %d before it\n", n, b->base_events);
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int built;
	struct blhdr *b = &B;
	size_t len, off, split, n;
	int keep_open, pause, steps = 0;

	if (size < 1 || size > 256 * 1024)
		return 0;
	if (!built) {
		blhdr_build(b);
		built = 1;
	}
	keep_open = data[0] & 1;
	pause = data[0] & 2;
	split = (size_t)(data[0] >> 2);
	data++;
	len = size - 1;
	b->up = b->down = b->permits = b->stanzas = 0;

	bob_connect(b);
	if (b->permits != 1)
		blhdr_die("permit() not asked exactly once");
	blhdr_settle(b);
	for (off = 0; off < len; off += n) {
		n = len - off;
		if (off == 0 && split > 0 && n > 4 * split)
			n = 4 * split;
		bob_send(b, data, off, n);
		if (pause && off == 0)
			blhdr_pause(b);
	}
	if (!keep_open && b->fd != -1)
		(void)shutdown(b->fd, SHUT_WR);
	/*
	 * Until barevlink has freed the pipe: bob hangs up once it is up
	 * (the header phase is over); until then barevlink's timeouts, in
	 * virtual time, end a pipe bob keeps open.
	 */
	while (!TAILQ_EMPTY(&b->bl->pipes)) {
		if (b->up && b->fd != -1) {
			close(b->fd);
			b->fd = -1;
		}
		if (blhdr_step(b, 1) == -1)
			blhdr_die("a pipe is left with nothing to wait for");
		if (++steps > MAX_STEPS)
			blhdr_die("the pipe never ended");
	}
	blhdr_settle(b);
	if (b->fd != -1) {
		close(b->fd);
		b->fd = -1;
	}
	if (b->up != b->down)
		blhdr_die("the pipe went up and never down");
	if (b->stanzas > 0 && !b->up)
		blhdr_die("stanzas without an up pipe");
	blhdr_check_clean(b);
	return 0;
}
