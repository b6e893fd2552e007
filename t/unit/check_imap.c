/* SPDX-License-Identifier: MIT */
/* Unit tests: the imap section (parsing, validation), Dovecot user and
 * mailbox names, the administrators' ACL lines, the fragment's decisions
 * and the account template's files. */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "imap/dovecot.h"
#include "state/snapshot.h"
#include "imap/template.h"
#include "unit.h"
#include "lib/util.h"
#include "imap/settings.h"
#include "cli/sections.h"

static const char *const ROUTER = "router: {\n main_domain = \"company.dom\";\n"
                                  " domains = ( { name = \"company.dom\"; }, { name = \"domain.dom\"; }, "
                                  "{ name = \"legacy.dom\"; } );\n};\n";

static char tmpdir[64];

static void make_tmpdir(void)
{
    strcpy(tmpdir, "/tmp/wp-imap-XXXXXX");
    ck_assert(mkdtemp(tmpdir));
}

static void rm_rf(const char *path)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    ck_assert_int_eq(system(cmd), 0);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert(f);
    fputs(text, f);
    fclose(f);
}

static char *read_text(const char *path)
{
    char err[256];
    size_t len;
    char *s = wp_read_file(path, 1 << 20, &len, err, sizeof(err));
    ck_assert_msg(s, "%s", err);
    return s;
}

/* Load ROUTER + imap_text as w.conf; the errors joined (directory left
 * out), "" if none; *out gets the snapshot (NULL on errors). */
static char *load(const char *imap_text, struct wp_snapshot **out)
{
    static char joined[4096];
    joined[0] = '\0';
    make_tmpdir();
    char path[128];
    snprintf(path, sizeof(path), "%s/w.conf", tmpdir);
    char *text = wp_asprintf("%s%s", ROUTER, imap_text);
    write_text(path, text);
    free(text);
    struct wp_errors err;
    wp_errors_init(&err);
    struct wp_snapshot *s = wp_snapshot_load(path, wp_sections_all, &err);
    for (size_t i = 0; i < err.count; i++) {
        const char *m = strstr(err.msgs[i], "w.conf") ? strstr(err.msgs[i], "w.conf") : err.msgs[i];
        strncat(joined, m, sizeof(joined) - strlen(joined) - 2);
        strcat(joined, "\n");
    }
    ck_assert((s == NULL) == (err.count > 0));
    wp_errors_free(&err);
    rm_rf(tmpdir);
    if (out)
        *out = s;
    else
        wp_snapshot_unref(s);
    return joined;
}

START_TEST(mailbox_names)
{
    static const char *const good[] = {
        "INBOX",      "announce", "~marketing/announce", "~bob@domain.dom/INBOX", "Projects/2026",
        "with space", "Ünïcode"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        ck_assert_msg(wp_imap_name_valid(good[i]), "refused '%s'", good[i]);
    static const char *const bad[] = {"",          "a/../b", "..",    "trailing/", "tab\there",
                                      "new\nline", "pct%",   "star*", "del\x7f"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(!wp_imap_name_valid(bad[i]), "accepted '%s'", bad[i]);
    char longname[WP_IMAP_NAME_MAX + 2];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    ck_assert(!wp_imap_name_valid(longname));
    longname[WP_IMAP_NAME_MAX] = '\0';
    ck_assert(wp_imap_name_valid(longname));
}
END_TEST

START_TEST(dovecot_users)
{
    struct wp_snapshot *s;
    ck_assert_str_eq(load("", &s), "");
    char u[64];
    ck_assert(wp_dovecot_user(s->router, "alice@company.dom", u, sizeof(u)));
    ck_assert_str_eq(u, "alice");
    ck_assert(wp_dovecot_user(s->router, "Alice@COMPANY.dom", u, sizeof(u)));
    ck_assert_str_eq(u, "alice");
    ck_assert(wp_dovecot_user(s->router, "alice", u, sizeof(u)));
    ck_assert_str_eq(u, "alice");
    ck_assert(wp_dovecot_user(s->router, "Dave@Domain.dom", u, sizeof(u)));
    ck_assert_str_eq(u, "dave@domain.dom");
    ck_assert(!wp_dovecot_user(s->router, "@company.dom", u, sizeof(u)));
    ck_assert(!wp_dovecot_user(s->router, "a/b@company.dom", u, sizeof(u)));
    ck_assert(!wp_dovecot_user(s->router, "x@bad domain", u, sizeof(u)));
    ck_assert(!wp_dovecot_user(s->router, "averylongname@domain.dom", u, 8));
    wp_snapshot_unref(s);
}
END_TEST

START_TEST(defaults)
{
    struct wp_snapshot *s;
    ck_assert_str_eq(load("", &s), "");
    ck_assert_str_eq(wp_imap_conf(s)->mail_location, "maildir:~/Maildir");
    ck_assert_str_eq(wp_imap_conf(s)->alias_prefix, "Aliases/");
    ck_assert_str_eq(wp_imap_conf(s)->acl_file, "/etc/dovecot/waypost-global.acl");
    ck_assert(!wp_imap_conf(s)->lmtp_autocreate);
    ck_assert_uint_eq(
        wp_imap_conf(s)->nsubscriptions + wp_imap_conf(s)->naliases + wp_imap_conf(s)->nserver_admins, 0);
    ck_assert_int_eq(wp_imap_storage_separator(wp_imap_conf(s)), '.');
    char *root = wp_imap_mail_root(wp_imap_conf(s), "/home/alice");
    ck_assert_str_eq(root, "/home/alice/Maildir");
    free(root);
    wp_snapshot_unref(s);
    /* relative files start at the configuration's directory */
    ck_assert_str_eq(load("imap: { acl_file = \"global.acl\"; login_helper = \"bin/helper\"; };\n", &s), "");
    ck_assert(wp_imap_conf(s)->acl_file[0] == '/' && strstr(wp_imap_conf(s)->acl_file, "/global.acl"));
    ck_assert(wp_imap_conf(s)->login_helper[0] == '/' &&
              strstr(wp_imap_conf(s)->login_helper, "/bin/helper"));
    wp_snapshot_unref(s);
}
END_TEST

START_TEST(storage_separator)
{
    static const struct {
        const char *loc;
        char sep;
        const char *root;
    } cases[] = {
        {"maildir:~/Maildir", '.', "/h/Maildir"},
        {"maildir:~/Maildir:LAYOUT=fs", '/', "/h/Maildir"},
        {"maildir:%h/Mail:INDEX=/var/idx/%u", '.', "/h/Mail"},
        {"sdbox:~/dbox", '/', "/h/dbox"},
        {"mdbox:~/mdbox", '/', "/h/mdbox"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct wp_imap_conf c = {.mail_location = (char *)cases[i].loc};
        ck_assert_int_eq(wp_imap_storage_separator(&c), cases[i].sep);
        char *root = wp_imap_mail_root(&c, "/h");
        ck_assert_str_eq(root, cases[i].root);
        free(root);
    }
}
END_TEST

START_TEST(config_errors)
{
    ck_assert_str_eq(load("imap: {\n mail_location = \"/var/mail/%u\";\n};\n", NULL),
                     "w.conf:6: imap.mail_location '/var/mail/%u' must be TYPE:~/PATH[:PARAMS] or "
                     "TYPE:%h/PATH[:PARAMS] without CONTROL= or SUBSCRIPTIONS= (e.g. maildir:~/Maildir)\n");
    ck_assert(strstr(load("imap: {\n mail_location = \"maildir:~/Maildir:CONTROL=~/ctl\";\n};\n", NULL),
                     "w.conf:6: imap.mail_location"));
    ck_assert(strstr(load("imap: {\n mail_location = \"maildir:/srv/%u/Maildir\";\n};\n", NULL),
                     "w.conf:6: imap.mail_location"));
    static const char *const bad_prefixes[] = {"",    "Aliases", "/",        "A/B/",
                                               "~x/", "INBOX/",  ".hidden/", "a%/"};
    for (size_t i = 0; i < sizeof(bad_prefixes) / sizeof(bad_prefixes[0]); i++) {
        char *text = wp_asprintf("imap: {\n alias_prefix = \"%s\";\n};\n", bad_prefixes[i]);
        ck_assert_msg(strstr(load(text, NULL), "w.conf:6: imap.alias_prefix"), "accepted '%s'",
                      bad_prefixes[i]);
        free(text);
    }
    ck_assert_str_eq(load("imap: {\n alias_prefix = \"Shared aliases/\";\n};\n", NULL), "");
    ck_assert_str_eq(load("imap: {\n bogus = 1;\n};\n", NULL), "w.conf:6: unknown setting 'bogus' in imap\n");
    ck_assert_str_eq(load("imap: {\n template = {\n  subscriptions = [ \"ok\", \"bad%\" ];\n };\n};\n", NULL),
                     "w.conf:7: imap.template.subscriptions: 'bad%' is not a mailbox name\n");
    ck_assert_str_eq(load("imap: { template = { aliases = (\n"
                          "  { name = \"a/b\"; target = \"~m/x\"; },\n"
                          "  { name = \"ok\"; target = \"-~m/x\"; },\n"
                          "  { name = \"ok\"; target = \"~m/y\"; },\n"
                          "  { name = \".dot\"; target = \" ~m/y\"; }\n"
                          "); }; };\n",
                          NULL),
                     "w.conf:6: imap.template.aliases: name 'a/b' must be one plain mailbox name\n"
                     "w.conf:7: imap.template.aliases: target '-~m/x' is not a mailbox name\n"
                     "w.conf:8: imap.template.aliases: 'ok' is defined twice\n"
                     "w.conf:9: imap.template.aliases: name '.dot' must be one plain mailbox name\n"
                     "w.conf:9: imap.template.aliases: target ' ~m/y' is not a mailbox name\n");
    ck_assert_str_eq(load("imap: { template = { aliases = ( { name = \"x\"; } ); }; };\n", NULL),
                     "w.conf:5: missing required setting 'target'\n");
    ck_assert_str_eq(load("imap: {\n server_admins = [ \"boss@other.dom\", \"no-at-all@\" ];\n};\n", NULL),
                     "w.conf:6: imap.server_admins: 'boss@other.dom' is not in a domain of router.domains\n"
                     "w.conf:6: imap.server_admins: 'no-at-all@' is not an account address\n");
    ck_assert_str_eq(load("imap: {\n domain_admins = [ \"x/y@domain.dom\" ];\n};\n", NULL),
                     "w.conf:6: imap.domain_admins: 'x/y@domain.dom' is not an account address\n");
}
END_TEST

static char *print_to_string(bool acl, struct wp_snapshot *s, int version)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert(f);
    if (acl)
        wp_dovecot_print_acl(f, wp_imap_conf(s), s->router, "/etc/waypost/waypost.conf");
    else
        wp_dovecot_print_conf(f, wp_imap_conf(s), s->router, "/etc/waypost/waypost.conf", version);
    fclose(f);
    return buf;
}

/* The lines of text that are not comments or empty. */
static char *rules_only(char *text)
{
    char *out = wp_calloc(strlen(text) + 1, 1);
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
        if (line[0] != '#')
            strcat(strcat(out, line), "\n");
    free(text);
    return out;
}

START_TEST(acl_lines)
{
    struct wp_snapshot *s;
    ck_assert_str_eq(load("imap: {\n server_admins = [ \"Boss@company.dom\" ];\n"
                          " domain_admins = [ \"cadmin\", \"dave@Domain.dom\" ];\n};\n",
                          &s),
                     "");
    char *acl = rules_only(print_to_string(true, s, WP_DOVECOT_23));
    ck_assert_str_eq(acl, "~* user=boss lrwstipekxa\n"
                          /* main domain: all foreign mailboxes, then not the other domains' */
                          "~* user=cadmin lrwstipekxa\n"
                          "~*@domain.dom -user=cadmin lrwstipekxa\n"
                          "~*@domain.dom/* -user=cadmin lrwstipekxa\n"
                          "~*@legacy.dom -user=cadmin lrwstipekxa\n"
                          "~*@legacy.dom/* -user=cadmin lrwstipekxa\n"
                          /* another domain: its accounts' INBOXes and mailboxes */
                          "~*@domain.dom user=dave@domain.dom lrwstipekxa\n"
                          "~*@domain.dom/* user=dave@domain.dom lrwstipekxa\n");
    free(acl);
    wp_snapshot_unref(s);
    ck_assert_str_eq(load("", &s), "");
    acl = rules_only(print_to_string(true, s, WP_DOVECOT_23));
    ck_assert_str_eq(acl, "");
    free(acl);
    wp_snapshot_unref(s);
}
END_TEST

START_TEST(fragment)
{
    struct wp_snapshot *s;
    ck_assert_str_eq(
        load("imap: {\n mail_location = \"maildir:~/Mail:LAYOUT=fs\";\n alias_prefix = \"Links/\";\n"
             " login_helper = \"/usr/lib/waypost/helper\";\n lmtp_autocreate = true;\n"
             " shared_dict = \"file:/srv/shared.db\";\n};\n",
             &s),
        "");
    char why[256];
    ck_assert(wp_dovecot_conf_supported(wp_imap_conf(s), WP_DOVECOT_23, why, sizeof(why)));
    char *conf = print_to_string(false, s, WP_DOVECOT_23);
    static const char *const want[] = {
        "auth_username_format = %{if;%Ld;eq;company.dom;%Ln;%Lu}\n",
        "mail_location = maildir:~/Mail:LAYOUT=fs\n",
        "mail_plugins = $mail_plugins acl virtual\n",
        "  mail_plugins = $mail_plugins imap_acl\n",
        "lda_mailbox_autocreate = yes\n",
        "  lmtp_save_to_detail_mailbox = yes\n",
        "  prefix = ~%%u/\n",
        "  location = maildir:%%h/Mail:LAYOUT=fs:INDEXPVT=~/waypost-shared/%%u\n",
        "  list = no\n",
        "  prefix = Links/\n",
        "  location = virtual:~/waypost-aliases\n",
        "  acl = vfile:/etc/dovecot/waypost-global.acl\n",
        "  acl_shared_dict = file:/srv/shared.db\n",
        "  executable = imap waypost-imap-login\n",
        "  executable = script-login -d /usr/lib/waypost/helper -c /etc/waypost/waypost.conf\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        ck_assert_msg(strstr(conf, want[i]), "missing %s in\n%s", want[i], conf);
    free(conf);
    wp_snapshot_unref(s);
}
END_TEST

/* The same configuration in Dovecot 2.4's settings. */
START_TEST(fragment24)
{
    struct wp_snapshot *s;
    ck_assert_str_eq(
        load("imap: {\n mail_location = \"maildir:~/Mail:LAYOUT=fs\";\n alias_prefix = \"Links/\";\n"
             " login_helper = \"/usr/lib/waypost/helper\";\n lmtp_autocreate = true;\n"
             " shared_dict = \"file:/srv/shared.db\";\n};\n",
             &s),
        "");
    char why[256];
    ck_assert(wp_dovecot_conf_supported(wp_imap_conf(s), WP_DOVECOT_24, why, sizeof(why)));
    char *conf = print_to_string(false, s, WP_DOVECOT_24);
    static const char *const want[] = {
        "protocol lmtp {\n  auth_username_format = %{user | lower | regexp('^(.*)@company[.]dom$', "
        "'\\\\1')}\n}\n",
        "protocol !lmtp {\n  auth_username_format = %{user | lower | regexp('^(.*)@company[.]dom$', "
        "'\\\\1')}\n}\n",
        "\nmail_driver = maildir\n",
        "\nmail_path = ~/Mail\n",
        "\nmail_inbox_path =\n",
        "\nmailbox_list_layout = fs\n",
        "mail_plugins {\n  acl = yes\n  virtual = yes\n}\n",
        "protocol imap {\n  mail_plugins {\n    imap_acl = yes\n  }\n}\n",
        "lda_mailbox_autocreate = yes\n",
        "  lmtp_save_to_detail_mailbox = yes\n",
        "  prefix = ~$user/\n",
        "  mail_path = %{owner_home}/Mail\n",
        "  mail_index_private_path = ~/waypost-shared/%{owner_user}\n",
        "  list = no\n",
        "  prefix = Links/\n",
        "  mail_driver = virtual\n  mail_path = ~/waypost-aliases\n",
        "\nacl_driver = vfile\n",
        "\nacl_global_path = /etc/dovecot/waypost-global.acl\n",
        "acl_sharing_map {\n  dict file {\n    path = /srv/shared.db\n  }\n}\n",
        "\nimap_acl_allow_anyone = yes\n",
        "  executable = imap waypost-imap-login\n",
        "  executable = script-login -d /usr/lib/waypost/helper -c /etc/waypost/waypost.conf\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        ck_assert_msg(strstr(conf, want[i]), "missing %s in\n%s", want[i], conf);
    /* Nothing of 2.3's syntax. */
    static const char *const not_want[] = {"mail_location", "location =", "acl_shared_dict", "%%", "%L",
                                           "plugin {",      "acl_anyone"};
    for (size_t i = 0; i < sizeof(not_want) / sizeof(not_want[0]); i++)
        ck_assert_msg(!strstr(conf, not_want[i]), "2.3 syntax %s in\n%s", not_want[i], conf);
    free(conf);
    wp_snapshot_unref(s);

    /* No LAYOUT= parameter: no mailbox_list_layout line. */
    ck_assert_str_eq(load("", &s), "");
    conf = print_to_string(false, s, WP_DOVECOT_24);
    ck_assert_msg(strstr(conf, "\nmail_path = ~/Maildir\n") && !strstr(conf, "mailbox_list_layout"), "%s",
                  conf);
    free(conf);
    wp_snapshot_unref(s);

    /* What 2.4 cannot be given in this form. */
    ck_assert_str_eq(load("imap: {\n mail_location = \"maildir:~/Mail:INDEX=/var/idx/%u\";\n};\n", &s), "");
    ck_assert(wp_dovecot_conf_supported(wp_imap_conf(s), WP_DOVECOT_23, why, sizeof(why)));
    ck_assert(!wp_dovecot_conf_supported(wp_imap_conf(s), WP_DOVECOT_24, why, sizeof(why)));
    ck_assert_msg(strstr(why, "only parameter may be :LAYOUT=NAME"), "%s", why);
    wp_snapshot_unref(s);
    ck_assert_str_eq(load("imap: {\n shared_dict = \"proxy::shared\";\n};\n", &s), "");
    ck_assert(!wp_dovecot_conf_supported(wp_imap_conf(s), WP_DOVECOT_24, why, sizeof(why)));
    ck_assert_msg(strstr(why, "must be file:/ABSOLUTE/PATH"), "%s", why);
    wp_snapshot_unref(s);
}
END_TEST

START_TEST(dovecot_versions)
{
    ck_assert_int_eq(wp_dovecot_version_parse("2.3", true), WP_DOVECOT_23);
    ck_assert_int_eq(wp_dovecot_version_parse("2.4", true), WP_DOVECOT_24);
    ck_assert_int_eq(wp_dovecot_version_parse("2.5", true), 0);
    ck_assert_int_eq(wp_dovecot_version_parse("2.4.1", true), 0);
    ck_assert_int_eq(wp_dovecot_version_parse("2.", true), 0);
    ck_assert_int_eq(wp_dovecot_version_parse("", true), 0);
    /* dovecot --version */
    ck_assert_int_eq(wp_dovecot_version_parse("2.3.19.1 (9b53102964)\n", false), WP_DOVECOT_23);
    ck_assert_int_eq(wp_dovecot_version_parse("2.4.1-4 (7d8c0e5759)\n", false), WP_DOVECOT_24);
    ck_assert_int_eq(wp_dovecot_version_parse("2.5.0 (x)", false), WP_DOVECOT_24);
    ck_assert_int_eq(wp_dovecot_version_parse("2.2.36", false), 0);
    ck_assert_int_eq(wp_dovecot_version_parse("2.30x", false), 0);
    ck_assert_int_eq(wp_dovecot_version_parse("Dovecot", false), 0);

    struct wp_snapshot *s;
    ck_assert_str_eq(load("imap: {\n dovecot_version = \"2.3\";\n};\n", &s), "");
    ck_assert_int_eq(wp_imap_conf(s)->dovecot_version, WP_DOVECOT_23);
    ck_assert_int_eq(wp_dovecot_version_choose(wp_imap_conf(s), WP_DOVECOT_AUTO), WP_DOVECOT_23);
    ck_assert_int_eq(wp_dovecot_version_choose(wp_imap_conf(s), WP_DOVECOT_24), WP_DOVECOT_24);
    wp_snapshot_unref(s);
    ck_assert_str_eq(load("", &s), "");
    ck_assert_int_eq(wp_imap_conf(s)->dovecot_version, WP_DOVECOT_AUTO);
    int installed = wp_dovecot_version_installed();
    ck_assert_int_eq(wp_dovecot_version_choose(wp_imap_conf(s), WP_DOVECOT_AUTO),
                     installed ? installed : WP_DOVECOT_24);
    wp_snapshot_unref(s);
    ck_assert_str_eq(load("imap: {\n dovecot_version = \"2.2\";\n};\n", NULL),
                     "w.conf:6: imap.dovecot_version '2.2' must be \"2.3\", \"2.4\" or \"auto\"\n");
}
END_TEST

START_TEST(subscription_lines)
{
    static const struct {
        const char *name;
        size_t prefix;
        char sep;
        const char *line;
    } cases[] = {
        /* Maildir++: own names split on "/", namespace prefixes kept, dots split */
        {"Projects/2026", 0, '.', "Projects\t2026"},
        {"~marketing/announce", 11, '.', "~marketing/announce"},
        {"~marketing/a/b", 11, '.', "~marketing/a\tb"},
        {"~bob@domain.dom/INBOX", 16, '.', "~bob@domain\tdom/INBOX"},
        {"Aliases/mkt-announce", 8, '.', "Aliases/mkt-announce"},
        /* "/" as the storage separator splits everything */
        {"~marketing/announce", 11, '/', "~marketing\tannounce"},
        {"Projects/2026", 0, '/', "Projects\t2026"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *line = wp_imap_subscription_line(cases[i].name, cases[i].prefix, cases[i].sep);
        ck_assert_msg(strcmp(line, cases[i].line) == 0, "%s: got '%s'", cases[i].name, line);
        free(line);
    }
    char *v = wp_imap_alias_virtual("~marketing/announce");
    ck_assert_str_eq(v, "~marketing/announce\n  all\n");
    free(v);
}
END_TEST

static struct wp_imap_conf template_conf(void)
{
    static char *subs[] = {"~marketing/announce", "Projects/2026", NULL};
    static struct wp_imap_alias aliases[] = {{"mkt-announce", "~marketing/announce"}, {NULL, NULL}};
    struct wp_imap_conf c = {.mail_location = "maildir:~/Maildir",
                             .alias_prefix = "Aliases/",
                             .subscriptions = subs,
                             .nsubscriptions = 2,
                             .aliases = aliases,
                             .naliases = 1};
    return c;
}

static char *home_file(const char *home, const char *rel)
{
    char *p = wp_asprintf("%s/%s", home, rel);
    char *s = read_text(p);
    free(p);
    return s;
}

START_TEST(template_once)
{
    struct wp_imap_conf c = template_conf();
    make_tmpdir();
    char *home = wp_asprintf("%s/home/alice", tmpdir); /* does not exist yet */
    char why[256];
    ck_assert_int_eq(wp_imap_template_apply(&c, home, why, sizeof(why)), 1);
    char *subs = home_file(home, "Maildir/subscriptions");
    ck_assert_str_eq(subs, "V\t2\n\n~marketing/announce\nProjects\t2026\nAliases/mkt-announce\n");
    free(subs);
    char *virt = home_file(home, "waypost-aliases/mkt-announce/dovecot-virtual");
    ck_assert_str_eq(virt, "~marketing/announce\n  all\n");
    free(virt);
    char *marker = wp_asprintf("%s/.waypost-template", home);
    ck_assert_int_eq(access(marker, F_OK), 0);

    /* The user unsubscribes (Dovecot rewrites the file): nothing comes back. */
    char *path = wp_asprintf("%s/Maildir/subscriptions", home);
    write_text(path, "V\t2\n\nProjects\t2026\n");
    ck_assert_int_eq(wp_imap_template_apply(&c, home, why, sizeof(why)), 0);
    subs = read_text(path);
    ck_assert_str_eq(subs, "V\t2\n\nProjects\t2026\n");
    free(subs);

    /* Without the marker (an account never seen): merged, no duplicates,
     * the user's own alias of the same name kept. */
    unlink(marker);
    char *alias = wp_asprintf("%s/waypost-aliases/mkt-announce/dovecot-virtual", home);
    write_text(alias, "INBOX\n  unseen\n");
    write_text(path, "V\t2\n\nOwn\n~marketing/announce\n");
    ck_assert_int_eq(wp_imap_template_apply(&c, home, why, sizeof(why)), 1);
    subs = read_text(path);
    ck_assert_str_eq(subs, "V\t2\n\nOwn\n~marketing/announce\nProjects\t2026\nAliases/mkt-announce\n");
    free(subs);
    virt = read_text(alias);
    ck_assert_str_eq(virt, "INBOX\n  unseen\n");
    free(virt);

    /* An old version-1 file gets version-1 lines (storage form). */
    unlink(marker);
    write_text(path, "Own\n");
    ck_assert_int_eq(wp_imap_template_apply(&c, home, why, sizeof(why)), 1);
    subs = read_text(path);
    ck_assert_str_eq(subs, "Own\n~marketing/announce\nProjects.2026\nAliases/mkt-announce\n");
    free(subs);

    free(alias), free(path), free(marker), free(home);
    rm_rf(tmpdir);
}
END_TEST

START_TEST(template_errors)
{
    struct wp_imap_conf c = template_conf();
    char why[256];
    ck_assert_int_eq(wp_imap_template_apply(&c, "relative/home", why, sizeof(why)), -1);
    ck_assert_msg(strstr(why, "not an absolute path"), "%s", why);
    make_tmpdir();
    /* A home below a plain file cannot be made: error, no marker, and the
     * next login tries again. */
    char *file = wp_asprintf("%s/file", tmpdir);
    write_text(file, "x");
    char *home = wp_asprintf("%s/home", file);
    ck_assert_int_eq(wp_imap_template_apply(&c, home, why, sizeof(why)), -1);
    ck_assert_msg(strstr(why, "Not a directory"), "%s", why);
    /* A subscriptions "file" that is a directory: error, no marker. */
    char *home2 = wp_asprintf("%s/home2", tmpdir);
    char *subdir = wp_asprintf("%s/Maildir/subscriptions", home2);
    char *cmd = wp_asprintf("mkdir -p '%s'", subdir);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(wp_imap_template_apply(&c, home2, why, sizeof(why)), -1);
    ck_assert_msg(strstr(why, "subscriptions"), "%s", why);
    char *marker = wp_asprintf("%s/.waypost-template", home2);
    ck_assert_int_ne(access(marker, F_OK), 0);
    /* An empty template still records that it was applied. */
    struct wp_imap_conf empty = {.mail_location = "maildir:~/Maildir", .alias_prefix = "Aliases/"};
    char *home3 = wp_asprintf("%s/home3", tmpdir);
    ck_assert_int_eq(wp_imap_template_apply(&empty, home3, why, sizeof(why)), 1);
    ck_assert_int_eq(wp_imap_template_apply(&empty, home3, why, sizeof(why)), 0);
    free(home3), free(marker), free(cmd), free(subdir), free(home2), free(home), free(file);
    rm_rf(tmpdir);
}
END_TEST

START_TEST(conf_read_alone)
{
    /* The helper reads only the imap section (no Router, no accounts). */
    make_tmpdir();
    char *path = wp_asprintf("%s/w.conf", tmpdir);
    write_text(path, "router: { main_domain = \"company.dom\"; table = \"missing.table\"; };\n"
                     "imap: { template = { subscriptions = [ \"~marketing/announce\" ]; }; };\n");
    struct wp_errors err;
    wp_errors_init(&err);
    struct wp_imap_conf c;
    ck_assert(wp_imap_conf_read(path, &c, &err));
    ck_assert_uint_eq(c.nsubscriptions, 1);
    ck_assert_str_eq(c.subscriptions[0], "~marketing/announce");
    wp_imap_conf_free(&c);
    write_text(path, "imap: { template = { subscriptions = [ \"a%\" ]; }; };\n");
    ck_assert(!wp_imap_conf_read(path, &c, &err));
    ck_assert_uint_eq(err.count, 1);
    wp_imap_conf_free(&c);
    write_text(path, "imap = 5;\n");
    ck_assert(!wp_imap_conf_read(path, &c, &err));
    wp_imap_conf_free(&c);
    unlink(path);
    ck_assert(!wp_imap_conf_read(path, &c, &err));
    wp_imap_conf_free(&c);
    wp_errors_free(&err);
    free(path);
    rm_rf(tmpdir);
}
END_TEST

static Suite *imap_suite(void)
{
    Suite *s = suite_create("imap");
    TCase *tc = tcase_create("imap");
    tcase_add_test(tc, mailbox_names);
    tcase_add_test(tc, dovecot_users);
    tcase_add_test(tc, defaults);
    tcase_add_test(tc, storage_separator);
    tcase_add_test(tc, config_errors);
    tcase_add_test(tc, acl_lines);
    tcase_add_test(tc, fragment);
    tcase_add_test(tc, fragment24);
    tcase_add_test(tc, dovecot_versions);
    tcase_add_test(tc, subscription_lines);
    tcase_add_test(tc, template_once);
    tcase_add_test(tc, template_errors);
    tcase_add_test(tc, conf_read_alone);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(imap_suite)
