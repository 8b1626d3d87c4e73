/*
 * netns — a fuzz harness's own network namespace (see netns.h).
 */
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netns.h"

static void
die(const char *what)
{
	fprintf(stderr, "fuzz: %s\n", what);
	abort();
}

void
fz_own_netns(const char *reserved_ports)
{
	struct ifreq ifr;
	int fd;

	if (unshare(CLONE_NEWNET) == -1)
		return;
	memset(&ifr, 0, sizeof ifr);
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
	if ((fd = socket(AF_INET, SOCK_DGRAM, 0)) == -1 ||
	    ioctl(fd, SIOCGIFFLAGS, &ifr) == -1)
		die("no loopback in the new network namespace");
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) == -1)
		die("cannot bring loopback up");
	close(fd);
	if (reserved_ports == NULL)
		return;
	if ((fd = open("/proc/sys/net/ipv4/ip_local_reserved_ports", O_WRONLY)) == -1 ||
	    write(fd, reserved_ports, strlen(reserved_ports)) == -1)
		die("cannot reserve ports in the new network namespace");
	close(fd);
}
