/*
 * test_transfer_url — which links the gateway fetches for a Barev peer
 * (download_hosts, issue 15): scheme + host + port of the upload service,
 * never the same host on another port (an admin or metrics service).
 * The policy is gateway/transfer/transfer_url.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "transfer.h"
#include "../check.h"

static int
allowed(const char *list, const char *upload, const char *url)
{
	char *v[4] = { NULL };
	struct gw_strlist l = { v, 0 };
	char buf[512], *p, *tok;

	snprintf(buf, sizeof(buf), "%s", list);
	for (p = buf; (tok = strsep(&p, ",")) != NULL && *tok;)
		v[l.n++] = tok;
	return xfer_url_allowed(&l, upload, url);
}

static void
test_scheme_host_port_prefix(void)
{
	const char *up = "https://upload.example.org:5281/file_share/";

	CHECK(allowed(up, "", "https://upload.example.org:5281/file_share/ab/x.pdf") == 1);
	CHECK(allowed(up, "", "https://UPLOAD.example.org:5281/file_share/ab/x.pdf") == 1);
	/* the same host elsewhere: refused, and said to be the same host */
	CHECK(allowed(up, "", "https://upload.example.org:5280/file_share/ab/x") == -1);
	CHECK(allowed(up, "", "https://upload.example.org/file_share/ab/x") == -1);
	CHECK(allowed(up, "", "http://upload.example.org:5281/file_share/ab/x") == -1);
	CHECK(allowed(up, "", "https://upload.example.org:5281/admin/") == -1);
	CHECK(allowed(up, "", "https://upload.example.org:5281/file_share/../admin") == -1);
	CHECK(allowed(up, "", "https://upload.example.org:5281/file_share/%2e%2E/admin") == -1);
	CHECK(allowed(up, "", "https://upload.example.org:5281/file_share/x%2f..%2fadmin") == -1);
	/* userinfo does not fool it: the host is what is fetched */
	CHECK(allowed(up, "", "https://upload.example.org:5281@evil.org:5281/file_share/x") == 0);
	CHECK(allowed(up, "", "https://example.com/cat.png") == 0);
	CHECK(allowed(up, "", "not a url") == 0);
}

static void
test_bare_hosts_mean_default_ports(void)
{
	CHECK(allowed("upload.example.org", "", "https://upload.example.org/f/x") == 1);
	CHECK(allowed("upload.example.org", "", "http://upload.example.org:80/f/x") == 1);
	CHECK(allowed("upload.example.org", "", "http://upload.example.org:8080/x") == -1);
	CHECK(allowed("upload.example.org", "", "https://upload.example.org:9090/m") == -1);
	/* host:port: that port, either scheme */
	CHECK(allowed("127.0.0.1:5280", "", "http://127.0.0.1:5280/file_share/x") == 1);
	CHECK(allowed("127.0.0.1:5280", "", "http://127.0.0.1:5281/x") == -1);
	CHECK(allowed("[::1]:5280", "", "http://[::1]:5280/x") == 1);
	CHECK(allowed("[::1]:5280", "", "http://[::1]:22/x") == -1);
	/* several entries: any one */
	CHECK(allowed("a.org,http://127.0.0.1:5280/fs/", "", "http://127.0.0.1:5280/fs/x") == 1);
	/* none configured: the upload service's host, default ports only */
	CHECK(allowed("", "upload.example.org", "https://upload.example.org/x") == 1);
	CHECK(allowed("", "upload.example.org", "http://upload.example.org:8081/") == -1);
	CHECK(allowed("", "", "https://upload.example.org/x") == 0);
}

int
main(void)
{
	RUN(test_scheme_host_port_prefix);
	RUN(test_bare_hosts_mean_default_ports);
	return CHECK_EXIT();
}
