/* SPDX-License-Identifier: MIT */
/* Unit tests: decision log lines (lib/kvline.h), per-worker counters,
 * slots and label escaping (lib/metrics.h), policyd's per-record
 * counting (policy/stats.h) and the milter's rule maps (milter/stats.h). */
#include "config.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/kvline.h"
#include "lib/metrics.h"
#include "milter/settings.h"
#include "milter/stats.h"
#include "policy/stats.h"
#include "router/router.h"
#include "router/table.h"
#include "state/snapshot.h"
#include "unit_router.h"

START_TEST(kvline_fields_and_escapes)
{
    struct wp_kvline l;
    wp_kvline_init(&l);
    wp_kvline_add(&l, "event", "policy");
    wp_kvline_add(&l, "queue_id", "");
    wp_kvline_add(&l, "sender", "a b\"c\\d=e");
    wp_kvline_add(&l, "recipient", "x\r\ny\x7f");
    wp_kvline_add(&l, "record", NULL);
    wp_kvline_addf(&l, "n", "%d", 3);
    ck_assert_str_eq(
        wp_kvline_text(&l),
        "event=policy queue_id=\"\" sender=\"a b\\\"c\\\\d=e\" recipient=x\\x0d\\x0ay\\x7f record=\"\" n=3");
}
END_TEST

START_TEST(kvline_cut)
{
    struct wp_kvline l;
    wp_kvline_init(&l);
    char big[5000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    wp_kvline_add(&l, "first", "1");
    wp_kvline_add(&l, "big", big);
    wp_kvline_add(&l, "after", "2");
    const char *t = wp_kvline_text(&l);
    ck_assert_uint_lt(strlen(t), WP_KVLINE_MAX);
    ck_assert(strncmp(t, "first=1 big=aaa", 15) == 0);
    ck_assert_str_eq(t + strlen(t) - 3, "...");
    ck_assert_ptr_null(strstr(t, "after"));
}
END_TEST

START_TEST(slots_keep_keys)
{
    struct wp_slots s;
    wp_slots_init(&s, 3);
    uint32_t a = wp_slots_intern_locked(&s, "r\tt\tRelay:<*@a> = b", 19);
    uint32_t b = wp_slots_intern_locked(&s, "r\tt\tRelay:<*@a> = c", 19);
    ck_assert_uint_ne(a, b);
    /* the same key, as a reload maps it again: the same slot */
    ck_assert_uint_eq(wp_slots_intern_locked(&s, "r\tt\tRelay:<*@a> = b", 19), a);
    wp_slots_hit(&s, 0, a);
    wp_slots_hit(&s, 1, a);
    wp_slots_hit(&s, 2, a);
    wp_slots_hit(&s, 2, b);
    wp_slots_hit(&s, 2, WP_SLOT_NONE); /* ignored */
    ck_assert_uint_eq(wp_slots_sum(&s, a), 3);
    ck_assert_uint_eq(wp_slots_sum(&s, b), 1);
    /* many keys: chunks and index grow, earlier slots keep their counts */
    char key[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        uint32_t k = wp_slots_intern_locked(&s, key, strlen(key));
        wp_slots_hit(&s, i % 3, k);
    }
    ck_assert_uint_eq(s.n, 5002);
    ck_assert_uint_eq(wp_slots_sum(&s, wp_slots_intern_locked(&s, "k4999", 5)), 1);
    ck_assert_uint_eq(wp_slots_sum(&s, a), 3);
    wp_slots_free(&s);
}
END_TEST

START_TEST(histogram_and_labels)
{
    struct wp_hist h;
    memset(&h, 0, sizeof(h));
    wp_hist_add(&h, 5000);       /* 5 us: the first bucket */
    wp_hist_add(&h, 10000);      /* 10 us: not below 10, the second */
    wp_hist_add(&h, 2000000000); /* 2 s: +Inf */
    ck_assert_uint_eq(wp_counter_get(&h.bucket[0]), 1);
    ck_assert_uint_eq(wp_counter_get(&h.bucket[1]), 1);
    ck_assert_uint_eq(wp_counter_get(&h.bucket[WP_HIST_BUCKETS]), 1);
    ck_assert_uint_eq(wp_counter_get(&h.sum_ns), 2000015000ULL);
    wp_hist_add_n(&h, 30000, 4); /* 30 us, 4 times: the third bucket */
    ck_assert_uint_eq(wp_counter_get(&h.bucket[2]), 4);
    ck_assert_uint_eq(wp_counter_get(&h.sum_ns), 2000135000ULL);
    struct evbuffer *b = evbuffer_new();
    wp_metrics_label(b, "a\"b\\c\nd");
    size_t n = evbuffer_get_length(b);
    char out[64] = "";
    evbuffer_remove(b, out, n);
    ck_assert_str_eq(out, "a\\\"b\\\\c\\nd");
    evbuffer_free(b);
}
END_TEST

/* Record hits wait in the worker's pass and are folded at its end (or when
 * the pending ids are full, or before the worker changes maps): counted
 * exactly once each, in the slot of the record that decided. */
START_TEST(pstats_hits_fold_at_pass_end)
{
    struct wp_router *r = unit_sample_router();
    const struct wp_table *t = r->table;
    ck_assert_uint_ge(t->nrecs, 2);

    struct wp_pstats st;
    wp_pstats_init(&st, NULL, 2);
    struct wp_pstats_map *m = wp_pstats_map_get(&st, r);
    struct wp_decision d0 = {.resolved = true, .record = wp_table_record(t, t->ids[0])};
    struct wp_decision d1 = {.resolved = true, .record = wp_table_record(t, t->ids[t->nrecs - 1])};
    uint64_t start = 1;                              /* long ago: every sample lands in +Inf */
    for (int i = 0; i < WP_PSTATS_PENDING + 44; i++) /* past the pending ids: one fold on the way */
        wp_pstats_count(&st, 0, m, 0, 0, WP_PA_FOUND, &d0, start);
    wp_pstats_count(&st, 1, m, 0, 0, WP_PA_FOUND, &d1, start);
    wp_pstats_count(&st, 1, m, 0, 0, WP_PA_NOTFOUND, NULL, start);                 /* no decision: no hit */
    ck_assert_uint_eq(wp_slots_sum(&st.slots, m->rec_slot[0]), WP_PSTATS_PENDING); /* the rest waits */
    ck_assert_uint_eq(wp_slots_sum(&st.slots, m->rec_slot[t->nrecs - 1]), 0);
    wp_pstats_pass_end(&st, 0, m);
    wp_pstats_pass_end(&st, 1, m);
    ck_assert_uint_eq(wp_slots_sum(&st.slots, m->rec_slot[0]), WP_PSTATS_PENDING + 44);
    ck_assert_uint_eq(wp_slots_sum(&st.slots, m->rec_slot[t->nrecs - 1]), 1);
    ck_assert_uint_eq(wp_counter_get(&st.workers[0].latency.bucket[WP_HIST_BUCKETS]), WP_PSTATS_PENDING + 44);
    ck_assert_uint_eq(wp_counter_get(&st.workers[1].latency.bucket[WP_HIST_BUCKETS]), 2);
    /* a pass without requests adds no sample */
    wp_pstats_pass_end(&st, 1, m);
    ck_assert_uint_eq(wp_counter_get(&st.workers[1].latency.bucket[WP_HIST_BUCKETS]), 2);
    wp_pstats_map_put(&st, m);
    wp_pstats_free(&st);
    wp_router_free(r);
}
END_TEST

/* A waypost.conf with the given rules, loaded with the milter's section. */
static struct wp_snapshot *milter_snapshot(const char *rules)
{
    char dir[] = "/tmp/wp-observe-XXXXXX";
    ck_assert(mkdtemp(dir));
    char conf[256];
    snprintf(conf, sizeof(conf), "%s/w.conf", dir);
    FILE *f = fopen(conf, "w");
    ck_assert(f);
    fprintf(f,
            "router: { main_domain = \"corp.dom\";\n"
            "  domains = ( { name = \"corp.dom\"; accounts = \"list:a,b\"; } ); };\n"
            "rules = (\n%s);\n",
            rules);
    fclose(f);
    struct wp_errors err;
    wp_errors_init(&err);
    struct wp_snapshot *s = wp_snapshot_load(conf, wp_milter_sections, &err);
    ck_assert_uint_eq(err.count, 0);
    wp_errors_free(&err);
    unlink(conf);
    rmdir(dir);
    ck_assert_ptr_nonnull(s);
    return s;
}

static uint64_t fires(struct wp_mstats *st, const struct wp_mstats_map *m, size_t i)
{
    return wp_slots_sum(&st->slots, m->slot[i]);
}

/* An unchanged rule keeps its slot (and count) in the next rules' map; a
 * changed rule gets a new slot; a message counts through its map without
 * the lock. */
START_TEST(milter_rule_maps)
{
    struct wp_mstats st;
    wp_mstats_init(&st, NULL, 300);
    struct wp_snapshot *s1 = milter_snapshot(
        "  { name = \"keep\"; data = ( (\"Subject\", \"is\", \"*x*\") ); action = ( (\"Discard\") ); },\n"
        "  { name = \"change\"; action = ( (\"Add Header\", \"X-A: 1\") ); }\n");
    struct wp_snapshot *s2 = milter_snapshot(
        "  { name = \"keep\"; data = ( (\"Subject\", \"is\", \"*x*\") ); action = ( (\"Discard\") ); },\n"
        "  { name = \"change\"; action = ( (\"Add Header\", \"X-A: 2\") ); },\n"
        "  { name = \"new\"; action = ( (\"Add Header\", \"X-B: 1\") ); }\n");
    struct wp_mstats_map *m1 = wp_mstats_map_get(&st, s1);
    ck_assert_ptr_eq(wp_mstats_map_get(&st, s1), m1); /* one map per rules object */
    ck_assert_int_eq(m1->refs, 2);
    wp_mstats_map_put(&st, m1);
    ck_assert_uint_eq(m1->n, 2);

    /* Two messages on the old rules: both fired "keep", one "change". */
    size_t both[2] = {0, 1}, keep[1] = {0}, bogus[1] = {7};
    struct wp_outcome out = {.fired_index = both, .nfired = 2};
    wp_mstats_message(&st, m1, WP_MR_DISCARD, 4000, 0, 0, &out);
    out.fired_index = keep;
    out.nfired = 1;
    wp_mstats_message(&st, m1, WP_MR_DISCARD, 30000, 1u << WP_ME_ACTION, 2, &out);
    out.fired_index = bogus; /* not a rule of the map: ignored */
    wp_mstats_message(&st, m1, WP_MR_ACCEPT, 2000000000, 1u << WP_ME_SOURCE, 0, &out);
    ck_assert_uint_eq(fires(&st, m1, 0), 2);
    ck_assert_uint_eq(fires(&st, m1, 1), 1);

    /* The reload: "keep" is the same rule, "change" is not, "new" is new. */
    struct wp_mstats_map *m2 = wp_mstats_map_get(&st, s2);
    ck_assert_ptr_ne(m2, m1);
    ck_assert_uint_eq(m2->n, 3);
    ck_assert_uint_eq(m2->slot[0], m1->slot[0]);
    ck_assert_uint_ne(m2->slot[1], m1->slot[1]);
    ck_assert_uint_ne(m2->slot[2], m1->slot[1]);
    ck_assert_uint_eq(fires(&st, m2, 0), 2); /* kept over the reload */
    ck_assert_uint_eq(fires(&st, m2, 1), 0); /* changed: from zero */
    ck_assert_uint_eq(fires(&st, m2, 2), 0);
    out.fired_index = both;
    out.nfired = 2;
    wp_mstats_message(&st, m2, WP_MR_ACCEPT, 100, 0, 0, &out);
    ck_assert_uint_eq(fires(&st, m2, 0), 3);
    ck_assert_uint_eq(fires(&st, m2, 1), 1);
    ck_assert_uint_eq(fires(&st, m1, 1), 1); /* the old "change" kept its own count */

    /* Counters of this thread's writer: results, errors, the histogram. */
    uint64_t msgs[WP_MR_COUNT] = {0}, errs[WP_ME_COUNT] = {0}, hist = 0;
    for (int w = 0; w < WP_MSTATS_WRITERS; w++) {
        for (int r = 0; r < WP_MR_COUNT; r++)
            msgs[r] += wp_counter_get(&st.w[w].messages[r]);
        for (int e = 0; e < WP_ME_COUNT; e++)
            errs[e] += wp_counter_get(&st.w[w].errors[e]);
        for (int k = 0; k <= WP_HIST_BUCKETS; k++)
            hist += wp_counter_get(&st.w[w].latency.bucket[k]);
    }
    ck_assert_uint_eq(msgs[WP_MR_DISCARD], 2);
    ck_assert_uint_eq(msgs[WP_MR_ACCEPT], 2);
    ck_assert_uint_eq(errs[WP_ME_SOURCE], 1);
    ck_assert_uint_eq(errs[WP_ME_ACTION], 1);
    ck_assert_uint_eq(errs[WP_ME_REPLY], 2);
    ck_assert_uint_eq(errs[WP_ME_OVERSIZED], 0);
    ck_assert_uint_eq(hist, 4);

    /* The maps go with their last user, and their snapshots with them. */
    wp_mstats_map_put(&st, m1);
    ck_assert_ptr_eq(st.maps, m2);
    ck_assert_ptr_null(m2->next);
    wp_mstats_map_put(&st, m2);
    ck_assert_ptr_null(st.maps);
    wp_snapshot_unref(s1);
    wp_snapshot_unref(s2);
    wp_mstats_free(&st);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("observe");
    TCase *tc = tcase_create("observe");
    tcase_add_test(tc, kvline_fields_and_escapes);
    tcase_add_test(tc, kvline_cut);
    tcase_add_test(tc, slots_keep_keys);
    tcase_add_test(tc, histogram_and_labels);
    tcase_add_test(tc, pstats_hits_fold_at_pass_end);
    tcase_add_test(tc, milter_rule_maps);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(suite)
