/* SPDX-License-Identifier: MIT */
/* Unit tests: CommuniGate's textual data format (lib/cgpdata.c), with the
 * examples of the Guide's Data Formats page and malformed texts. */
#include "config.h"

#include <string.h>

#include "lib/cgpdata.h"
#include "lib/util.h"
#include "unit.h"

static struct wp_cgp *P(const char *text)
{
    char err[256];
    struct wp_cgp *v = wp_cgp_parse(text, strlen(text), err, sizeof(err));
    ck_assert_msg(v != NULL, "'%s': %s", text, err);
    return v;
}

/* The error message of a text that must not parse. */
static const char *E(const char *text, size_t len)
{
    static char err[256];
    struct wp_cgp *v = wp_cgp_parse(text, len, err, sizeof(err));
    ck_assert_msg(v == NULL, "'%s' parsed", text);
    return err;
}
#define ERR(text) E(text, strlen(text))

START_TEST(strings)
{
    struct wp_cgp *v = P("MyName");
    ck_assert_int_eq(v->type, WP_CGP_STRING);
    ck_assert_str_eq(wp_cgp_str(v), "MyName");
    ck_assert(!v->quoted);
    wp_cgp_free(v);
    v = P("  \"My Name with spaces and the . symbol\"\r\n");
    ck_assert_str_eq(wp_cgp_str(v), "My Name with spaces and the . symbol");
    ck_assert(v->quoted);
    wp_cgp_free(v);
    v = P("\"a \\\"string\\\" within string\"");
    ck_assert_str_eq(wp_cgp_str(v), "a \"string\" within string");
    wp_cgp_free(v);
    v = P("\"Single \\\\ backslash\"");
    ck_assert_str_eq(wp_cgp_str(v), "Single \\ backslash");
    wp_cgp_free(v);
    v = P("\"Line1\\eLine2\" ");
    ck_assert_str_eq(wp_cgp_str(v), "Line1\nLine2");
    wp_cgp_free(v);
    v = P("\"TEXT3\\rTEXT67\\nTEXT78\\tx\"");
    ck_assert_str_eq(wp_cgp_str(v), "TEXT3\rTEXT67\nTEXT78\tx");
    wp_cgp_free(v);
    v = P("\"Using the \\012 symbol \\255\""); /* decimal: 12 is form feed */
    ck_assert_str_eq(wp_cgp_str(v), "Using the \f symbol \xff");
    wp_cgp_free(v);
    v = P("\"\"");
    ck_assert_str_eq(wp_cgp_str(v), "");
    ck_assert_uint_eq(v->len, 0);
    wp_cgp_free(v);
    /* UTF-8 passes through, quoted or not; atoms as the CLI writes them. */
    v = P("\"Grüße, 東京\"");
    ck_assert_str_eq(wp_cgp_str(v), "Grüße, 東京");
    wp_cgp_free(v);
    v = P("mail.servername.com");
    ck_assert_str_eq(wp_cgp_str(v), "mail.servername.com");
    wp_cgp_free(v);
    v = P("#T01-01-2007_00:00:00");
    ck_assert_str_eq(wp_cgp_str(v), "#T01-01-2007_00:00:00");
    wp_cgp_free(v);
}
END_TEST

START_TEST(datablocks)
{
    struct wp_cgp *v = P("[HcqHfHI=]");
    ck_assert_int_eq(v->type, WP_CGP_DATA);
    ck_assert_uint_eq(v->len, 5);
    ck_assert(memcmp(v->str, "\x1d\xca\x87\x7c\x72", 5) == 0);
    ck_assert_ptr_null(wp_cgp_str(v));
    ck_assert_str_eq(wp_cgp_type_name(v->type), "data block");
    wp_cgp_free(v);
    v = P("[ AAEC\r\n AwQ= ]");
    ck_assert_uint_eq(v->len, 5);
    ck_assert(memcmp(v->str, "\0\1\2\3\4", 5) == 0);
    wp_cgp_free(v);
    v = P("[]");
    ck_assert_uint_eq(v->len, 0);
    wp_cgp_free(v);
}
END_TEST

START_TEST(arrays_and_dictionaries)
{
    struct wp_cgp *v = P("(Element1 , (\"Sub Element1\", SubElement2) , \"Element 3\")");
    ck_assert_int_eq(v->type, WP_CGP_ARRAY);
    ck_assert_uint_eq(wp_cgp_count(v), 3);
    ck_assert_str_eq(wp_cgp_str(wp_cgp_item(v, 0)), "Element1");
    ck_assert_uint_eq(wp_cgp_count(wp_cgp_item(v, 1)), 2);
    ck_assert_str_eq(wp_cgp_str(wp_cgp_item(wp_cgp_item(v, 1), 1)), "SubElement2");
    ck_assert_str_eq(wp_cgp_str(wp_cgp_item(v, 2)), "Element 3");
    ck_assert_ptr_null(wp_cgp_item(v, 3));
    wp_cgp_free(v);
    v = P("()");
    ck_assert_int_eq(v->type, WP_CGP_ARRAY);
    ck_assert_uint_eq(wp_cgp_count(v), 0);
    wp_cgp_free(v);
    v = P("{\n Key1 = (Elem1,Elem2) ;\n Key2 = { Sub1 = \"XXX 1\";\nSub2=X245; };\n \"Third Key\"=\"Element "
          "3\"; }");
    ck_assert_int_eq(v->type, WP_CGP_DICT);
    ck_assert_uint_eq(v->n, 3);
    ck_assert_uint_eq(wp_cgp_count(wp_cgp_get(v, "Key1")), 2);
    ck_assert_str_eq(wp_cgp_str(wp_cgp_get(wp_cgp_get(v, "Key2"), "Sub2")), "X245");
    ck_assert_str_eq(wp_cgp_str(wp_cgp_get(v, "Third Key")), "Element 3");
    ck_assert_ptr_null(wp_cgp_get(v, "key1")); /* keys are case-sensitive */
    ck_assert_ptr_nonnull(wp_cgp_get_ci(v, "key1"));
    ck_assert_int_eq(wp_cgp_get(v, "Key2")->line, 3);
    ck_assert_int_eq(wp_cgp_get(v, "Key2")->col, 9);
    wp_cgp_free(v);
    v = P("{}");
    ck_assert_uint_eq(v->n, 0);
    wp_cgp_free(v);
    v = P("{a=b}"); /* the last ';' may be left out */
    ck_assert_str_eq(wp_cgp_str(wp_cgp_get(v, "a")), "b");
    wp_cgp_free(v);
    /* A rule as GetServerMailRules returns it. */
    v = P("((5, \"Copy\", ((From, in, \"*@domain1.dom,*@domain2.dom\")), ((\"Store in\", "
          "\"~security/outgoing\"))))");
    const struct wp_cgp *rule = wp_cgp_item(v, 0);
    ck_assert_str_eq(wp_cgp_str(wp_cgp_item(rule, 0)), "5");
    ck_assert_str_eq(wp_cgp_str(wp_cgp_item(wp_cgp_item(wp_cgp_item(rule, 3), 0), 0)), "Store in");
    wp_cgp_free(v);
}
END_TEST

START_TEST(malformed)
{
    ck_assert_str_eq(ERR(""), "1:1: an object was expected, found the end");
    ck_assert_str_eq(ERR("\"abc"), "1:1: unterminated quoted string");
    ck_assert_str_eq(ERR("(a,\n  \"b"), "2:3: unterminated quoted string");
    ck_assert_str_eq(ERR("\"a\\qb\""), "1:4: unknown escape '\\q' in a quoted string");
    ck_assert_str_eq(ERR("\"\\12\""), "1:5: \\nnn takes three decimal digits");
    ck_assert_str_eq(ERR("\"\\000\""), "1:6: \\000 is not a byte a string may hold (1..255)");
    ck_assert_str_eq(ERR("\"\\256\""), "1:6: \\256 is not a byte a string may hold (1..255)");
    ck_assert_str_eq(ERR("\"a\nb\""), "1:3: control character 0x0a in a quoted string");
    ck_assert_str_eq(ERR("(a, b"), "1:1: unterminated array");
    ck_assert_str_eq(ERR("(a b)"), "1:4: ',' or ')' expected in an array");
    ck_assert_str_eq(ERR("(a,)"), "1:4: unexpected ')'");
    ck_assert_str_eq(ERR("{a = b"), "1:1: unterminated dictionary");
    ck_assert_str_eq(ERR("{a b;}"), "1:4: '=' expected after a dictionary key");
    ck_assert_str_eq(ERR("{a = b c;}"), "1:8: ';' expected after a dictionary value");
    ck_assert_str_eq(ERR("{a = b; a = c;}"), "1:1: key 'a' appears twice in a dictionary");
    ck_assert_str_eq(ERR("{[AA==] = c;}"), "1:2: unexpected '['");
    ck_assert_str_eq(ERR("{\"\\027[2J\" = a; \"\\027[2J\" = b;}"),
                     "1:1: key '?[2J' appears twice in a dictionary");
    ck_assert_str_eq(ERR("[AB!]"), "1:4: '!' is not base64 in a data block");
    ck_assert_str_eq(ERR("[AA==A]"), "1:6: data after '=' padding in a data block");
    ck_assert_str_eq(ERR("[A]"), "1:1: bad base64 length in a data block");
    ck_assert_str_eq(ERR("[AAAA"), "1:1: unterminated data block");
    ck_assert_str_eq(ERR("a b"), "1:3: text after the end of the object");
    ck_assert_str_eq(ERR("<XML/>"), "1:1: XML objects (<...>) are not read");
    ck_assert_str_eq(E("a\0b", 3), "1:2: text after the end of the object");
    ck_assert_str_eq(E("(\x01)", 3), "1:2: unexpected control character 0x01");
}
END_TEST

START_TEST(limits)
{
    /* Nesting: 64 levels parse, 65 do not. */
    char deep[256];
    memset(deep, '(', 64);
    memset(deep + 64, ')', 64);
    deep[128] = '\0';
    wp_cgp_free(P(deep));
    memset(deep, '(', 66);
    memset(deep + 66, ')', 66);
    deep[132] = '\0';
    ck_assert_str_eq(ERR(deep), "1:66: nested more than 64 levels deep");
    /* A wide dictionary with a duplicate at its end is found in n log n. */
    size_t n = 200000;
    char *big = wp_malloc(n * 16 + 16), *p = big;
    *p++ = '{';
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "k%zu=v;", i);
    p += sprintf(p, "k7=v;}");
    ck_assert_str_eq(E(big, (size_t)(p - big)), "1:1: key 'k7' appears twice in a dictionary");
    free(big);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("cgpdata");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, strings);
    tcase_add_test(tc, datablocks);
    tcase_add_test(tc, arrays_and_dictionaries);
    tcase_add_test(tc, malformed);
    tcase_add_test(tc, limits);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(suite)
