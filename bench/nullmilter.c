/* SPDX-License-Identifier: MIT */
/*
 * nullmilter - a milter that does nothing: the cost of the milter protocol
 * itself (libmilter, one thread per connection, Postfix's side of the
 * conversation), for bench/milter.sh to compare waypost-milter against.
 *
 *   nullmilter unix:PATH
 *
 * It asks for the same steps as waypost-milter (no HELO, DATA, EOH,
 * unknown commands or body, no replies before the end of the message) and
 * accepts everything.
 */
#include "config.h"

#include <libmilter/mfapi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static sfsistat negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2,
                          unsigned long f3, unsigned long *pf0, unsigned long *pf1, unsigned long *pf2,
                          unsigned long *pf3)
{
    (void)ctx;
    (void)f0;
    (void)f2;
    (void)f3;
    const unsigned long noreply = SMFIP_NR_CONN | SMFIP_NR_MAIL | SMFIP_NR_RCPT | SMFIP_NR_HDR;
    unsigned long steps = SMFIP_NOHELO | SMFIP_NOUNKNOWN | SMFIP_NODATA | SMFIP_NOEOH | SMFIP_NOBODY;
    if ((f1 & noreply) == noreply)
        steps |= noreply;
    *pf0 = 0;
    *pf1 = steps & f1;
    *pf2 = *pf3 = 0;
    return SMFIS_CONTINUE;
}

static sfsistat noreply(SMFICTX *ctx)
{
    (void)ctx;
    return SMFIS_NOREPLY;
}

static sfsistat conn(SMFICTX *ctx, char *h, _SOCK_ADDR *a)
{
    (void)h;
    (void)a;
    return noreply(ctx);
}

static sfsistat envs(SMFICTX *ctx, char **argv)
{
    (void)argv;
    return noreply(ctx);
}

static sfsistat hdr(SMFICTX *ctx, char *n, char *v)
{
    (void)n;
    (void)v;
    return noreply(ctx);
}

static sfsistat eom(SMFICTX *ctx)
{
    (void)ctx;
    return SMFIS_CONTINUE;
}

int main(int argc, char **argv)
{
    struct smfiDesc d = {
        .xxfi_name = "nullmilter",
        .xxfi_version = SMFI_VERSION,
        .xxfi_flags = 0,
        .xxfi_connect = conn,
        .xxfi_envfrom = envs,
        .xxfi_envrcpt = envs,
        .xxfi_header = hdr,
        .xxfi_eom = eom,
        .xxfi_negotiate = negotiate,
    };
    if (argc != 2 || smfi_setconn(argv[1]) != MI_SUCCESS || smfi_register(d) != MI_SUCCESS ||
        smfi_opensocket(1) != MI_SUCCESS) {
        fprintf(stderr, "usage: nullmilter unix:PATH\n");
        return 2;
    }
    /* Postfix's smtpd runs as postfix: let it connect, as waypost-milter does. */
    if (strncmp(argv[1], "unix:", 5) == 0)
        chmod(argv[1] + 5, 0666);
    return smfi_main() == MI_SUCCESS ? 0 : 1;
}
