/* tracer._scan: StateBuilder's fold over a trace, in C, for the summary and the dashboard,
 * and the Chrome export's writer (Exporter, at the end: the same row parser, the slices
 * written as tracer/export.py writes them, byte for byte).
 *
 * Why C: a summary folds every event of a trace, and a traced server writes millions of
 * them a minute.  Parsing a line with orjson, turning a compact row into a dict and applying
 * it in Python (tracer.model.StateBuilder) costs several microseconds an event; this module
 * parses the compact rows itself and folds them into C structures, a fraction of that.
 *
 * What it computes is the frequent part of StateBuilder's state (tracer/model.py), step for
 * step, damaged events included: per-site call statistics (every duration in ``exact`` mode,
 * for the summary's percentiles, else the histogram the dashboard draws), timer lags and late
 * timers, respawns, the blocking calls with where they were scheduled from, stalls, the call
 * running now, the Deferreds created, fired, pending and failing.  Tests compare the two on
 * the sample traces and on random traces, event by event.  The rest of the state (sites,
 * loop samples, descriptors, threads, errors, marks, the end line...) comes from rare lines,
 * which this module hands to Python:
 *
 *   - ``slow(line, lineno)`` parses any line the strict row grammar below does not take (an
 *     object, a row with whitespace, escapes, floats or out-of-range numbers, a bad line) and
 *     returns the event or None, warning as tracer.reader does;
 *   - ``cold(event, index)`` applies an event of a kind this module does not fold
 *     (StateBuilder.handle).
 *
 * For the dashboard (tracer/indexed.py) a Scanner also keeps an index of the lines it fed
 * (``index=True``: offset, length, time, kind) and copies itself (``snapshot``) so that the
 * state at any event is a copy fed the lines after it.
 *
 * A row is taken here only when it is certainly valid, ``["kind",int,...]`` without
 * whitespace and of the types of tracer/format.py KINDS; anything else goes to ``slow``,
 * which decides.  So the fast path never changes which lines are skipped, nor the warnings.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* Start times (end - duration) and per-site totals can pass int64 in a damaged trace;
 * Python's integers do not overflow, so neither do these. */
typedef __int128 wide;

/* tracer.model constants, repeated here (tests compare the folds). */
#define RECENT_DEFERREDS 1024
#define NESTED_SITES_KEPT 8
#define NO_SLEEP_NS 100000
/* tracer.format.MAX_TEXT: the longest call kind kept (a longer one is cut). */
#define MAX_TEXT 200
/* tracer.reader.MAX_LINE: a longer line is skipped by ``slow``, with its warning. */
#define MAX_LINE (64 << 20)

/* -- growable arrays ----------------------------------------------------------------- */

typedef struct { int64_t *v; size_t n, cap; } Ints;

static int ints_push(Ints *a, int64_t x) {
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        int64_t *v = PyMem_Realloc(a->v, cap * sizeof *v);
        if (v == NULL) { PyErr_NoMemory(); return -1; }
        a->v = v; a->cap = cap;
    }
    a->v[a->n++] = x;
    return 0;
}

/* -- int64 -> (a, b) hash map: open addressing, linear probing ------------------------ */

/* A Deferred not yet settled, or settled lately (tracer.model.DeferredInfo): ``fired`` holds
 * when FIRED is set, ``waiting_on`` when WAITING is. */
typedef struct { int64_t site, created, callbacks, fired, waiting_on, flags; } Deferred;
#define FIRED 1
#define WAITING 2
#define CANCELLED 4

/* ``seq`` numbers a map's insertions, so its entries can be listed in the order a Python dict
 * keeps (a key added again after its removal goes last). */
typedef struct {
    int64_t key, seq;
    union { struct { int64_t a, b; }; Deferred d; };
    char used;
} Slot;
typedef struct { Slot *slots; size_t cap, len; int64_t seq; } Map;

static size_t hash64(int64_t key) {
    uint64_t x = (uint64_t)key;
    x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; x ^= x >> 33;
    return (size_t)x;
}

static Slot *map_find(Map *m, int64_t key) {
    if (m->len == 0) return NULL;
    size_t mask = m->cap - 1, i = hash64(key) & mask;
    while (m->slots[i].used) {
        if (m->slots[i].key == key) return &m->slots[i];
        i = (i + 1) & mask;
    }
    return NULL;
}

/* The slot of ``key``, added (a = b = 0) when absent; NULL when out of memory. */
static Slot *map_put(Map *m, int64_t key) {
    if ((m->len + 1) * 2 > m->cap) {  /* at most half full: probes stay short */
        size_t cap = m->cap ? m->cap * 2 : 64;
        Slot *slots = PyMem_Calloc(cap, sizeof *slots);
        if (slots == NULL) { PyErr_NoMemory(); return NULL; }
        for (size_t j = 0; j < m->cap; j++) {
            if (!m->slots[j].used) continue;
            size_t i = hash64(m->slots[j].key) & (cap - 1);
            while (slots[i].used) i = (i + 1) & (cap - 1);
            slots[i] = m->slots[j];
        }
        PyMem_Free(m->slots);
        m->slots = slots; m->cap = cap;
    }
    size_t mask = m->cap - 1, i = hash64(key) & mask;
    while (m->slots[i].used) {
        if (m->slots[i].key == key) return &m->slots[i];
        i = (i + 1) & mask;
    }
    memset(&m->slots[i], 0, sizeof m->slots[i]);
    m->slots[i].key = key;
    m->slots[i].seq = ++m->seq;
    m->slots[i].used = 1;
    m->len++;
    return &m->slots[i];
}

/* Remove a slot, moving later entries of its probe run back (no tombstones). */
static void map_del(Map *m, Slot *slot) {
    size_t mask = m->cap - 1, i = (size_t)(slot - m->slots), j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!m->slots[j].used) break;
        size_t home = hash64(m->slots[j].key) & mask;
        /* the entry at j may move to i unless its home lies cyclically in (i, j] */
        int stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (!stays) { m->slots[i] = m->slots[j]; i = j; }
    }
    m->slots[i].used = 0;
    m->len--;
}

/* -- the fold's state ---------------------------------------------------------------- */

/* tracer.model's histogram: buckets per power of two of a duration (_SUB), and a timer that
 * starts this much after its due time counts as late (LATE_NS). */
#define SUB 8
#define LATE_NS 10000000

/* tracer.model._bucket */
static int bucket(int64_t ns) {
    if (ns < SUB) return ns > 0 ? (int)ns : 0;
    int bits = 64 - __builtin_clzll((unsigned long long)ns);
    return (bits - 3) * SUB + (int)(ns >> (bits - 4)) - SUB;
}

typedef struct {
    int64_t site, count, max, blocking, late, lag_max, respawns;
    wide total;
    PyObject *kind;   /* str */
    Ints durations;   /* exact: every duration */
    /* else the histogram: counts of buckets hist_lo .. hist_lo + hist_n - 1 */
    uint32_t *hist; int hist_lo, hist_n;
} Stats;

typedef struct { int64_t depth, since; PyObject *stack; } StallSample;
typedef struct { wide start; int64_t site; } Nested;

typedef struct {
    PyObject_HEAD
    wide threshold;
    int exact;                /* keep every duration and lag (the summary), else histograms */
    PyObject *sites;          /* dict id -> Site, filled by ``cold`` (for timer respawns) */
    PyObject *slow, *cold;
    int64_t events, t_ns, created, fired;
    Stats *stats; size_t n_stats, cap_stats;
    Map stats_of;             /* site -> index in stats (a) */
    Ints lags;
    /* The blocking calls and stalls: records appended to these lists, or, in a copy made by
     * ``snapshot`` (lists NULL), only counted: the copy folds events its original folded
     * already, so its records are the original's first ones. */
    PyObject *blocking;       /* list of (site, kind, depth, start, dur, stack|None, index, origin) */
    PyObject *stalls;         /* list of (call, chain, sample_since|None, sample_stack|None, nested) */
    int64_t n_blocking, n_stalls;
    StallSample *samples; size_t n_samples, cap_samples;   /* StateBuilder._stalls */
    Ints chain;               /* indices in blocking, of the loop-level call running now */
    Nested nested[NESTED_SITES_KEPT]; size_t n_nested;
    int has_sample; int64_t sample_since; PyObject *sample_stack;
    PyObject *running; int64_t running_depth;   /* the latest stall event, until its call ends */
    Map pending, waiters;     /* waiters: inner -> outer (a) */
    Map recent;               /* settled lately: their Deferred; the ring holds (id, seq) */
    int64_t *recent_order; size_t recent_head, recent_n, recent_cap;
    size_t recent_len;
    Map failing;              /* failed, not handled: a = creation site, b = when */
    Map timers;               /* pending timer -> scheduling site (a) */
    int respawn_known; int64_t respawn_site, respawn_fn; int respawn_same;  /* last pair compared */
    PyObject *dcall_kind, *timer_kind;
    /* The line index (``index=True``): per event, where its line is, its time (never
     * decreasing) and its kind (a number in ``kind_names``). */
    int indexing;
    Ints offsets, times;
    uint32_t *lengths; uint16_t *kinds; size_t index_cap;
    PyObject *kind_codes, *kind_names;   /* dict name -> code, list code -> name */
    int row_codes[8];                    /* a row kind's code, -1 until first seen */
} Scanner;

/* One event's fields, from a row or from an object. */
typedef struct {
    int has_t;
    int64_t t;
    const char *kind; Py_ssize_t kind_len;   /* a row's call kind (ASCII), or: */
    PyObject *kind_obj;                      /* an object's call kind */
    int64_t site, dur, depth, d, id, fn, inner, since, wait;
    int has_lag, has_due, has_x, has_exc, has_timer, busy;
    int64_t lag, due, timer;
    int fail;
} Event;

static Stats *stats_for(Scanner *s, int64_t site, PyObject *kind_obj, const char *kind,
                        Py_ssize_t kind_len) {
    Slot *slot = map_find(&s->stats_of, site);
    if (slot != NULL) return &s->stats[slot->a];
    if (s->n_stats == s->cap_stats) {
        size_t cap = s->cap_stats ? s->cap_stats * 2 : 16;
        Stats *stats = PyMem_Realloc(s->stats, cap * sizeof *stats);
        if (stats == NULL) { PyErr_NoMemory(); return NULL; }
        s->stats = stats; s->cap_stats = cap;
    }
    PyObject *name = kind_obj ? (Py_INCREF(kind_obj), kind_obj)
                              : PyUnicode_FromStringAndSize(kind, kind_len);
    if (name == NULL) return NULL;
    slot = map_put(&s->stats_of, site);
    if (slot == NULL) { Py_DECREF(name); return NULL; }
    slot->a = (int64_t)s->n_stats;
    Stats *st = &s->stats[s->n_stats++];
    memset(st, 0, sizeof *st);
    st->site = site;
    st->kind = name;
    return st;
}

/* One more call of ``dur`` in the histogram, widening its range of buckets when needed. */
static int hist_add(Stats *st, int64_t dur) {
    int b = bucket(dur);
    if (st->hist_n == 0 || b < st->hist_lo || b >= st->hist_lo + st->hist_n) {
        int lo = st->hist_n == 0 || b < st->hist_lo ? b : st->hist_lo;
        int hi = st->hist_n == 0 || b >= st->hist_lo + st->hist_n ? b + 1 : st->hist_lo + st->hist_n;
        uint32_t *hist = PyMem_Calloc((size_t)(hi - lo), sizeof *hist);
        if (hist == NULL) { PyErr_NoMemory(); return -1; }
        if (st->hist_n)
            memcpy(hist + (st->hist_lo - lo), st->hist, (size_t)st->hist_n * sizeof *hist);
        PyMem_Free(st->hist);
        st->hist = hist; st->hist_lo = lo; st->hist_n = hi - lo;
    }
    st->hist[b - st->hist_lo]++;
    return 0;
}

static PyObject *wide_to_py(wide v) {
    if (v >= INT64_MIN && v <= INT64_MAX) return PyLong_FromLongLong((long long)v);
    /* past int64: hi * 2**64 + lo */
    PyObject *hi = PyLong_FromLongLong((long long)(v >> 64));
    PyObject *lo = PyLong_FromUnsignedLongLong((unsigned long long)(v & UINT64_MAX));
    PyObject *shift = PyLong_FromLong(64), *result = NULL;
    if (hi && lo && shift) {
        PyObject *high = PyNumber_Lshift(hi, shift);
        if (high) { result = PyNumber_Add(high, lo); Py_DECREF(high); }
    }
    Py_XDECREF(hi); Py_XDECREF(lo); Py_XDECREF(shift);
    return result;
}

/* StateBuilder._stall_ended: hand the stall's parts to Python (tracer.model.stall_of). */
static int stall_ended(Scanner *s, Py_ssize_t call) {
    s->n_stalls++;
    if (s->stalls == NULL) return 0;   /* a copy: the original has the record */
    PyObject *chain = PyTuple_New((Py_ssize_t)s->chain.n);
    PyObject *nested = PyList_New((Py_ssize_t)s->n_nested);
    if (chain == NULL || nested == NULL) goto fail;
    for (size_t i = 0; i < s->chain.n; i++) {
        PyObject *index = PyLong_FromLongLong(s->chain.v[i]);
        if (index == NULL) goto fail;
        PyTuple_SET_ITEM(chain, (Py_ssize_t)i, index);
    }
    for (size_t i = 0; i < s->n_nested; i++) {
        PyObject *start = wide_to_py(s->nested[i].start);
        PyObject *pair = start ? Py_BuildValue("(NL)", start, (long long)s->nested[i].site) : NULL;
        if (pair == NULL) goto fail;
        PyList_SET_ITEM(nested, (Py_ssize_t)i, pair);
    }
    PyObject *record = s->has_sample
        ? Py_BuildValue("(nNLON)", call, chain, (long long)s->sample_since, s->sample_stack, nested)
        : Py_BuildValue("(nNOON)", call, chain, Py_None, Py_None, nested);
    if (record == NULL) return -1;
    int rc = PyList_Append(s->stalls, record);
    Py_DECREF(record);
    return rc;
fail:
    Py_XDECREF(chain); Py_XDECREF(nested);
    return -1;
}

static void forget_sample(Scanner *s) {
    s->has_sample = 0;
    Py_CLEAR(s->sample_stack);
}

/* StateBuilder._ended: a call or a Deferred callback ended; ``origin`` is where it was
 * scheduled from, or where its Deferred was created. */
static int ended(Scanner *s, Event *e, PyObject *kind_obj, const char *kind, Py_ssize_t kind_len,
                 int64_t index, int64_t origin) {
    wide start = (wide)e->t - e->dur;
    Stats *st = stats_for(s, e->site, kind_obj, kind, kind_len);
    if (st == NULL) return -1;
    st->count++;
    st->total += e->dur;
    if (e->dur > st->max) st->max = e->dur;
    if ((s->exact ? ints_push(&st->durations, e->dur) : hist_add(st, e->dur)) < 0) return -1;
    PyObject *stack = NULL;   /* the stall sample taken during this call, popped */
    for (size_t i = 0; i < s->n_samples; i++) {
        if (s->samples[i].depth == e->depth && (wide)s->samples[i].since == start) {
            stack = s->samples[i].stack;
            s->samples[i] = s->samples[--s->n_samples];
            break;
        }
    }
    Py_ssize_t blocking = -1;
    if ((wide)e->dur > s->threshold) {
        st->blocking++;
        blocking = (Py_ssize_t)s->n_blocking++;
        if (s->blocking != NULL) {
            PyObject *start_obj = wide_to_py(start);
            PyObject *name = kind_obj ? (Py_INCREF(kind_obj), kind_obj)
                                      : PyUnicode_FromStringAndSize(kind, kind_len);
            PyObject *record = start_obj && name ? Py_BuildValue(
                "(LNLNLOLL)", (long long)e->site, name, (long long)e->depth, start_obj,
                (long long)e->dur, stack ? stack : Py_None, (long long)index,
                (long long)origin) : NULL;
            if (record == NULL || PyList_Append(s->blocking, record) < 0) {
                Py_XDECREF(record); Py_XDECREF(stack);
                return -1;
            }
            Py_DECREF(record);
        }
    }
    Py_XDECREF(stack);
    if (e->depth > 0) {
        if (blocking >= 0 && ints_push(&s->chain, blocking) < 0) return -1;
        if (s->n_nested < NESTED_SITES_KEPT)
            s->nested[s->n_nested++] = (Nested){start, e->site};
    } else {
        if (blocking >= 0 && stall_ended(s, blocking) < 0) return -1;
        s->chain.n = 0;
        s->n_nested = 0;
        forget_sample(s);
    }
    for (size_t i = 0; i < s->n_samples;) {   /* samples of calls at this depth or deeper */
        if (s->samples[i].depth >= e->depth) {
            Py_DECREF(s->samples[i].stack);
            s->samples[i] = s->samples[--s->n_samples];
        } else {
            i++;
        }
    }
    if (s->running != NULL && s->running_depth >= e->depth) Py_CLEAR(s->running);
    return 0;
}

static int on_call(Scanner *s, Event *e, int64_t index) {
    int64_t origin = 0;
    if (e->has_timer) {
        Slot *timer = map_find(&s->timers, e->timer);
        if (timer != NULL) { origin = timer->a; map_del(&s->timers, timer); }
    }
    if (!e->has_t) return 0;  /* StateBuilder: KeyError on ev["t"], the event changes nothing */
    if (ended(s, e, e->kind_obj, e->kind, e->kind_len, index, origin) < 0) return -1;
    if (!e->has_lag) return 0;
    Stats *st = &s->stats[map_find(&s->stats_of, e->site)->a];
    if (e->lag > LATE_NS) st->late++;
    if (e->lag > st->lag_max) st->lag_max = e->lag;
    return s->exact ? ints_push(&s->lags, e->lag) : 0;
}

static int on_dcall(Scanner *s, Event *e, int64_t index) {
    Slot *info = map_find(&s->pending, e->d);
    if (info == NULL) info = map_find(&s->recent, e->d);
    int64_t origin = info != NULL ? info->d.site : 0;
    if (!e->has_t) return 0;
    if (ended(s, e, s->dcall_kind, NULL, 0, index, origin) < 0) return -1;
    if (!e->fail) {
        Slot *failing = map_find(&s->failing, e->d);
        if (failing != NULL) map_del(&s->failing, failing);
        return 0;
    }
    Slot *failing = map_put(&s->failing, e->d);
    if (failing == NULL) return -1;
    failing->a = origin;
    failing->b = e->t;
    return 0;
}

/* The ``fn`` of site ``id`` (UNKNOWN_SITE's "?" when undefined), a new reference. */
static PyObject *site_fn(Scanner *s, int64_t id) {
    PyObject *key = PyLong_FromLongLong(id);
    if (key == NULL) return NULL;
    PyObject *site = PyDict_GetItemWithError(s->sites, key);
    Py_DECREF(key);
    if (site == NULL) return PyErr_Occurred() ? NULL : PyUnicode_FromString("?");
    return PyObject_GetAttrString(site, "fn");
}

/* StateBuilder._timer: the timer's scheduling site is kept until it runs; a timer that
 * re-schedules its own function at once counts as a respawn of that function. */
static int on_timer(Scanner *s, Event *e) {
    Slot *timer = map_put(&s->timers, e->id);
    if (timer == NULL) return -1;
    timer->a = e->site;
    if (!e->has_due) return 0;
    if (!e->has_t) return 0;
    if ((wide)e->due - e->t >= NO_SLEEP_NS || e->site == 0 || e->fn == 0) return 0;
    if (!s->respawn_known || e->site != s->respawn_site || e->fn != s->respawn_fn) {
        PyObject *a = site_fn(s, e->site), *b = a ? site_fn(s, e->fn) : NULL;
        int same = b ? PyObject_RichCompareBool(a, b, Py_EQ) : -1;
        Py_XDECREF(a); Py_XDECREF(b);
        if (same < 0) return -1;
        s->respawn_known = 1; s->respawn_site = e->site; s->respawn_fn = e->fn;
        s->respawn_same = same;
    }
    if (!s->respawn_same) return 0;
    Stats *st = stats_for(s, e->fn, s->timer_kind, NULL, 0);
    if (st == NULL) return -1;
    st->respawns++;
    return 0;
}

static int on_tcancel(Scanner *s, Event *e) {
    Slot *timer = map_find(&s->timers, e->id);
    if (timer != NULL) map_del(&s->timers, timer);
    return 0;
}

static int on_stall(Scanner *s, Event *e, PyObject *ev, PyObject *stack) {
    for (size_t i = 0; i < s->n_samples; i++) {
        if (s->samples[i].depth == e->depth && s->samples[i].since == e->since) {
            Py_INCREF(stack);
            Py_SETREF(s->samples[i].stack, stack);
            goto sample;
        }
    }
    if (s->n_samples == s->cap_samples) {
        size_t cap = s->cap_samples ? s->cap_samples * 2 : 8;
        StallSample *samples = PyMem_Realloc(s->samples, cap * sizeof *samples);
        if (samples == NULL) { PyErr_NoMemory(); return -1; }
        s->samples = samples; s->cap_samples = cap;
    }
    Py_INCREF(stack);
    s->samples[s->n_samples++] = (StallSample){e->depth, e->since, stack};
sample:
    Py_INCREF(stack);
    Py_XSETREF(s->sample_stack, stack);
    s->has_sample = 1;
    s->sample_since = e->since;
    Py_INCREF(ev);
    Py_XSETREF(s->running, ev);
    s->running_depth = e->depth;
    return 0;
}

/* -- Deferreds: pending ones, the recently settled ones (StateBuilder._recent) -------- */

static int recent_add(Scanner *s, Deferred *info, int64_t id) {
    Slot *kept = map_find(&s->recent, id);
    if (kept != NULL) {   /* an OrderedDict keeps its place, with the new value */
        kept->d = *info;
        return 0;
    }
    Deferred settled = *info;   /* ``info`` may lie in a map that map_put reorganises */
    Slot *slot = map_put(&s->recent, id);
    if (slot == NULL) return -1;
    slot->d = settled;
    if (s->recent_n == s->recent_cap) {
        size_t cap = s->recent_cap ? s->recent_cap * 2 : 2 * RECENT_DEFERREDS;
        int64_t *order = PyMem_Malloc(cap * 2 * sizeof *order);
        if (order == NULL) { PyErr_NoMemory(); return -1; }
        for (size_t i = 0; i < s->recent_n; i++) {
            size_t j = (s->recent_head + i) % s->recent_cap;
            order[2 * i] = s->recent_order[2 * j];
            order[2 * i + 1] = s->recent_order[2 * j + 1];
        }
        PyMem_Free(s->recent_order);
        s->recent_order = order; s->recent_cap = cap; s->recent_head = 0;
    }
    size_t tail = (s->recent_head + s->recent_n++) % s->recent_cap;
    s->recent_order[2 * tail] = id;
    s->recent_order[2 * tail + 1] = slot->seq;
    if (++s->recent_len <= RECENT_DEFERREDS) return 0;
    while (s->recent_n) {   /* drop the oldest still there (entries taken back are stale) */
        int64_t old = s->recent_order[2 * s->recent_head], seq = s->recent_order[2 * s->recent_head + 1];
        s->recent_head = (s->recent_head + 1) % s->recent_cap;
        s->recent_n--;
        Slot *found = map_find(&s->recent, old);
        if (found != NULL && found->seq == seq) {
            map_del(&s->recent, found);
            s->recent_len--;
            break;
        }
    }
    return 0;
}

/* StateBuilder._settle */
static int settle(Scanner *s, Slot *info) {
    if (!(info->d.flags & FIRED) || (info->d.flags & WAITING)) return 0;
    int64_t id = info->key;
    Deferred settled = info->d;
    map_del(&s->pending, info);
    return recent_add(s, &settled, id);
}

static int on_dnew(Scanner *s, Event *e) {
    s->created++;
    if (!e->has_t) return 0;
    Slot *info = map_put(&s->pending, e->d);
    if (info == NULL) return -1;
    info->d = (Deferred){.site = e->site, .created = e->t};
    return 0;
}

static int on_dadd(Scanner *s, Event *e) {
    Slot *info = map_find(&s->pending, e->d);
    if (info != NULL) info->d.callbacks++;
    return 0;
}

static int on_dcancel(Scanner *s, Event *e) {
    Slot *info = map_find(&s->pending, e->d);
    if (info != NULL) info->d.flags |= CANCELLED;
    return 0;
}

static int on_dfire(Scanner *s, Event *e) {
    s->fired++;
    Slot *info = map_find(&s->pending, e->d);
    if (e->fail) {
        if (!e->has_t) return 0;   /* KeyError on ev["t"] */
        int64_t site = info != NULL ? info->d.site : 0;
        Slot *failing = map_put(&s->failing, e->d);
        if (failing == NULL) return -1;
        failing->a = site;
        failing->b = e->t;
    }
    if (info != NULL) {
        if (!e->has_t) return 0;
        info->d.flags |= FIRED;
        info->d.fired = e->t;
        if (settle(s, info) < 0) return -1;
    }
    Slot *waiter = map_find(&s->waiters, e->d);
    if (waiter == NULL) return 0;
    int64_t outer = waiter->a;
    map_del(&s->waiters, waiter);
    Slot *waiting = map_find(&s->pending, outer);
    if (waiting != NULL && (waiting->d.flags & WAITING) && waiting->d.waiting_on == e->d) {
        waiting->d.flags &= ~WAITING;
        return settle(s, waiting);
    }
    return 0;
}

static int on_dchain(Scanner *s, Event *e) {
    Slot *inner = map_find(&s->pending, e->inner);
    if (inner == NULL || (inner->d.flags & FIRED)) return 0;
    Slot *info = map_find(&s->pending, e->d);
    Deferred outer;
    if (info != NULL) {
        outer = info->d;
    } else {
        Slot *settled = map_find(&s->recent, e->d);
        if (settled != NULL) {
            outer = settled->d;
            map_del(&s->recent, settled);   /* its place in the ring goes stale */
            s->recent_len--;
        } else if (!e->has_t) {
            return 0;
        } else {   /* one never seen: it has its result */
            outer = (Deferred){.created = e->t, .fired = e->t, .flags = FIRED};
        }
    }
    info = map_put(&s->pending, e->d);
    if (info == NULL) return -1;
    outer.flags |= WAITING;
    outer.waiting_on = e->inner;
    info->d = outer;
    Slot *waiter = map_put(&s->waiters, e->inner);
    if (waiter == NULL) return -1;
    waiter->a = e->d;
    return 0;
}

static int on_unhandled(Scanner *s, Event *e) {
    Slot *info = map_find(&s->pending, e->d);
    if (info != NULL) map_del(&s->pending, info);
    Slot *failing = map_find(&s->failing, e->d);
    if (failing != NULL) map_del(&s->failing, failing);
    return 0;
}

/* -- the strict row grammar ---------------------------------------------------------- */

typedef struct { char type; int64_t i; const char *s; Py_ssize_t len; } Value;

/* Parse one value at p (no whitespace); returns the end, or NULL when it is not a value
 * this grammar takes: an int64, null, true, false, or a string of printable ASCII without
 * escapes. */
static const char *value(const char *p, const char *end, Value *v) {
    if (p >= end) return NULL;
    if (*p == '"') {
        const char *q = ++p;
        while (q < end && *q != '"') {
            if (*q < 0x20 || *q > 0x7e || *q == '\\') return NULL;
            q++;
        }
        if (q >= end) return NULL;
        v->type = 's'; v->s = p; v->len = q - p;
        return q + 1;
    }
    if (end - p >= 4 && memcmp(p, "null", 4) == 0) { v->type = 'n'; return p + 4; }
    if (end - p >= 4 && memcmp(p, "true", 4) == 0) { v->type = 'b'; v->i = 1; return p + 4; }
    if (end - p >= 5 && memcmp(p, "false", 5) == 0) { v->type = 'b'; v->i = 0; return p + 5; }
    int negative = *p == '-';
    if (negative) p++;
    if (p >= end || *p < '0' || *p > '9') return NULL;
    if (*p == '0' && p + 1 < end && p[1] >= '0' && p[1] <= '9') return NULL;  /* not JSON */
    uint64_t n = 0;
    const char *start = p;
    while (p < end && *p >= '0' && *p <= '9') {
        if (p - start >= 19) return NULL;   /* past int64 */
        n = n * 10 + (uint64_t)(*p - '0');
        p++;
    }
    if (p < end && (*p == '.' || *p == 'e' || *p == 'E')) return NULL;   /* a float */
    if (negative ? n > (uint64_t)INT64_MAX + 1 : n > (uint64_t)INT64_MAX) return NULL;
    v->type = 'i';
    v->i = negative ? (int64_t)(0 - n) : (int64_t)n;
    return p;
}

/* The kinds written as rows (tracer.format ROWS) and the types of their fields after the
 * kind: i int64, N int64 or null, B boolean, S string, Z string or null; a poll row goes on
 * with integer pairs. */
enum { CALL, DCALL, TIMER, DNEW, DADD, DFIRE, POLL, N_ROWS };
#define ROW(name, types) {name, sizeof name - 1, types, sizeof types - 1}
static const struct { const char *name; Py_ssize_t name_len; const char *types; size_t n_types; }
ROWS[N_ROWS] = {
    [CALL] = ROW("call", "iSiiiNNZ"), [DCALL] = ROW("dcall", "iiiiiBB"),
    [TIMER] = ROW("timer", "iiiiN"), [DNEW] = ROW("dnew", "iii"), [DADD] = ROW("dadd", "iiii"),
    [DFIRE] = ROW("dfire", "iiB"), [POLL] = ROW("poll", "ii"),
};
#define MAX_FIELDS 8

static int fits(char type, char got) {
    switch (type) {
    case 'i': return got == 'i';
    case 'N': return got == 'i' || got == 'n';
    case 'B': return got == 'b';
    case 'S': return got == 's';
    case 'Z': return got == 's' || got == 'n';
    }
    return 0;
}

/* Parse a row into ``e``; returns its kind, or -1 when the line is not a row this grammar
 * takes (then ``slow`` decides what it is). */
static int parse_row(const char *p, const char *end, Event *e) {
    if (end - p < 4 || p[0] != '[' || p[1] != '"' || end[-1] != ']') return -1;
    Value kind;
    const char *q = value(p + 1, end, &kind);
    if (q == NULL || kind.type != 's') return -1;
    int row = 0;
    while (row < N_ROWS && !(ROWS[row].name_len == kind.len
                             && memcmp(ROWS[row].name, kind.s, (size_t)kind.len) == 0))
        row++;
    if (row == N_ROWS) return -1;
    const char *types = ROWS[row].types;
    size_t n_types = ROWS[row].n_types, n = 0;
    Value v[MAX_FIELDS];
    int busy = 0;   /* a poll found a descriptor writable (mask bit 2) */
    while (q < end - 1) {
        if (*q != ',') return -1;
        Value one;
        q = value(q + 1, end - 1, &one);
        if (q == NULL) return -1;
        if (n < n_types) {
            if (!fits(types[n], one.type)) return -1;
            v[n] = one;
        } else if (row != POLL || one.type != 'i') {
            return -1;
        } else if ((n - n_types) % 2 == 1 && (one.i & 2)) {
            busy = 1;
        }
        n++;
    }
    if (q != end - 1 || n < n_types || (row != POLL && n != n_types) || (row == POLL && n % 2))
        return -1;
    memset(e, 0, sizeof *e);
    e->has_t = 1;
    e->t = v[0].i;
    switch (row) {
    case CALL:
        if (v[1].len > MAX_TEXT) return -1;   /* cut by Python */
        e->kind = v[1].s; e->kind_len = v[1].len;
        e->site = v[2].i; e->dur = v[3].i; e->depth = v[4].i;
        e->has_lag = v[6].type == 'i'; e->lag = v[6].i;
        e->has_x = v[5].type == 'i'; e->id = v[5].i;   /* the timer id, or the fd */
        e->has_timer = e->has_x && v[1].len == 5 && memcmp(v[1].s, "timer", 5) == 0;
        e->timer = v[5].i;
        e->has_exc = v[7].type == 's';
        break;
    case DCALL:
        e->d = v[1].i; e->site = v[2].i; e->dur = v[3].i; e->depth = v[4].i; e->fail = (int)v[6].i;
        break;
    case TIMER:
        e->id = v[1].i; e->site = v[2].i; e->fn = v[3].i;
        e->has_due = v[4].type == 'i'; e->due = v[4].i;
        break;
    case DNEW: e->d = v[1].i; e->site = v[2].i; break;
    case DADD: e->d = v[1].i; break;
    case DFIRE: e->d = v[1].i; e->fail = (int)v[2].i; break;
    case POLL: e->wait = v[1].i; e->busy = busy; break;
    }
    return row;
}

/* The lines of a block handed to ``feed``: each non-empty one parsed as a row when it can be
 * (next_row gives its kind, -1 for a line left to ``slow``, END after the last line). */
typedef struct { const char *p, *end, *start, *line, *line_end; long long lineno, next, offset; } Lines;
#define END (-2)

static int lines_of(PyObject *args, Lines *l) {
    const char *data;
    Py_ssize_t size;
    l->offset = 0;
    if (!PyArg_ParseTuple(args, "y#L|L", &data, &size, &l->next, &l->offset)) return 0;
    l->p = l->start = data;
    l->end = data + size;
    return 1;
}

static int next_row(Lines *l, Event *e) {
    for (;;) {
        if (l->p >= l->end) return END;
        const char *nl = memchr(l->p, '\n', (size_t)(l->end - l->p));
        l->line = l->p;
        l->line_end = nl ? nl : l->end;
        l->p = nl ? nl + 1 : l->end;
        l->lineno = l->next++;
        if (l->line == l->line_end) continue;
        return l->line_end - l->line <= MAX_LINE ? parse_row(l->line, l->line_end, e) : -1;
    }
}

/* ``slow(line, lineno)`` for the current line. */
static PyObject *call_slow(PyObject *slow, Lines *l) {
    return PyObject_CallFunction(slow, "y#L", l->line, (Py_ssize_t)(l->line_end - l->line),
                                 l->lineno);
}

static int apply_row(Scanner *s, int row, Event *e, int64_t index) {
    switch (row) {
    case CALL: return on_call(s, e, index);
    case DCALL: return on_dcall(s, e, index);
    case TIMER: return on_timer(s, e);
    case DNEW: return on_dnew(s, e);
    case DADD: return on_dadd(s, e);
    case DFIRE: return on_dfire(s, e);
    }
    return 0;   /* a poll: see Scanner_feed */
}

/* -- events in object form (from ``slow``) ------------------------------------------- */

/* An integer field of a checked event: 1 when present, 0 when absent (or null), -1 on error. */
static int int_field(PyObject *ev, const char *name, int64_t *out) {
    PyObject *v = PyDict_GetItemString(ev, name);
    if (v == NULL || v == Py_None) return 0;
    if (!PyLong_Check(v)) return 0;
    *out = PyLong_AsLongLong(v);
    return (*out == -1 && PyErr_Occurred()) ? -1 : 1;
}

/* tracer.format.cut(text): bounded to MAX_TEXT characters, the cut marked with "…". */
static PyObject *cut_text(PyObject *text) {
    if (PyUnicode_GET_LENGTH(text) <= MAX_TEXT) { Py_INCREF(text); return text; }
    PyObject *head = PyUnicode_Substring(text, 0, MAX_TEXT - 1);
    if (head == NULL) return NULL;
    PyObject *mark = PyUnicode_FromString("\xe2\x80\xa6");
    PyObject *result = mark ? PyUnicode_Concat(head, mark) : NULL;
    Py_DECREF(head); Py_XDECREF(mark);
    return result;
}

/* ``cold(event, index)`` */
static int call_cold(Scanner *s, PyObject *ev, int64_t index) {
    PyObject *index_obj = PyLong_FromLongLong(index);
    if (index_obj == NULL) return -1;
    PyObject *result = PyObject_CallFunctionObjArgs(s->cold, ev, index_obj, NULL);
    Py_DECREF(index_obj);
    if (result == NULL) return -1;
    Py_DECREF(result);
    return 0;
}

/* Fold a checked event from ``slow``: the hot kinds here, the others through ``cold``. */
static int apply_object(Scanner *s, PyObject *ev, int64_t index) {
    PyObject *kind = PyDict_GetItemString(ev, "ev");
    if (kind == NULL || !PyUnicode_Check(kind)) return 0;
    const char *name = PyUnicode_AsUTF8(kind);
    if (name == NULL) return -1;
    Event e;
    memset(&e, 0, sizeof e);
    if ((e.has_t = int_field(ev, "t", &e.t)) < 0) return -1;
    int rc = 0;
    if (strcmp(name, "call") == 0 || strcmp(name, "dcall") == 0) {
        int dcall = name[0] == 'd';
        if (int_field(ev, "site", &e.site) < 0 || int_field(ev, "dur", &e.dur) < 0
            || int_field(ev, "depth", &e.depth) < 0
            || (e.has_lag = dcall ? 0 : int_field(ev, "lag", &e.lag)) < 0)
            return -1;
        if (dcall) {
            if (int_field(ev, "d", &e.d) < 0) return -1;
            e.fail = PyDict_GetItemString(ev, "fail") == Py_True;
            return on_dcall(s, &e, index);
        }
        if ((e.has_timer = int_field(ev, "timer", &e.timer)) < 0) return -1;
        if (!e.has_t) return on_call(s, &e, index);
        PyObject *call_kind = PyDict_GetItemString(ev, "kind");
        if (call_kind == NULL || (e.kind_obj = cut_text(call_kind)) == NULL) return -1;
        rc = on_call(s, &e, index);
        Py_DECREF(e.kind_obj);
        return rc;
    }
    if (strcmp(name, "timer") == 0) {
        if (int_field(ev, "id", &e.id) < 0 || int_field(ev, "site", &e.site) < 0
            || int_field(ev, "fn", &e.fn) < 0 || (e.has_due = int_field(ev, "due", &e.due)) < 0)
            return -1;
        return on_timer(s, &e);
    }
    if (strcmp(name, "tcancel") == 0) {
        if (int_field(ev, "id", &e.id) < 0) return -1;
        return on_tcancel(s, &e);
    }
    if (strcmp(name, "dnew") == 0 || strcmp(name, "dfire") == 0 || strcmp(name, "unhandled") == 0
        || strcmp(name, "dchain") == 0 || strcmp(name, "dadd") == 0 || strcmp(name, "dcancel") == 0) {
        if (int_field(ev, "d", &e.d) < 0 || int_field(ev, "inner", &e.inner) < 0
            || int_field(ev, "site", &e.site) < 0)
            return -1;
        if (strcmp(name, "dnew") == 0) return on_dnew(s, &e);
        if (strcmp(name, "dadd") == 0) return on_dadd(s, &e);
        if (strcmp(name, "dcancel") == 0) return on_dcancel(s, &e);
        if (strcmp(name, "dchain") == 0) return on_dchain(s, &e);
        if (strcmp(name, "dfire") == 0) {
            e.fail = PyDict_GetItemString(ev, "fail") == Py_True;
            return on_dfire(s, &e);
        }
        if (on_unhandled(s, &e) < 0) return -1;   /* and the failure itself, in Python */
    }
    if (strcmp(name, "stall") == 0) {
        PyObject *stack = PyDict_GetItemString(ev, "stack");
        if (int_field(ev, "depth", &e.depth) < 0 || int_field(ev, "since", &e.since) < 0
            || stack == NULL)
            return -1;
        return on_stall(s, &e, ev, stack);
    }
    if (strcmp(name, "site") == 0) s->respawn_known = 0;   /* a site's name may change */
    if (strcmp(name, "end") == 0) Py_CLEAR(s->running);
    if (strcmp(name, "reactor") == 0) {   /* the rest of these in Python */
        PyObject *state = PyDict_GetItemString(ev, "state");
        int running = state == NULL ? 0 : PyUnicode_Check(state)
            ? PyUnicode_CompareWithASCIIString(state, "running") == 0 : 0;
        if (!running) Py_CLEAR(s->running);
    }
    return call_cold(s, ev, index);
}

/* -- the Chrome export's slices and flows (tracer/export.py) ------------------------- */

/* tracer.export.TIMER_FLOW: timer flow ids are offset from Deferred ones. */
#define TIMER_FLOW ((int64_t)1 << 40)
/* Times are written in microseconds as ns / 1000.0 (a float); below 10**15 ns the exact
 * decimal has at most 15 significant digits, so it is the float's shortest form, the one
 * orjson writes.  Larger times (damage, or eleven days of trace) go through Python. */
#define EXACT_NS 1000000000000000LL
/* Output is handed to ``out.write`` in pieces of about this size. */
#define OUT_CHUNK (1 << 20)

typedef struct {
    PyObject_HEAD
    PyObject *write, *slow;
    PyObject *fragments;      /* list: per known site, (name JSON, where JSON) bytes */
    PyObject *unknown;        /* the pair for an undefined site */
    Map site_index;           /* site -> index in fragments (a) */
    Map flows;                /* open flows that fit int64 */
    PyObject *big_flows;      /* set: open flows past int64 (a timer id near the top) */
    char *buf; size_t n, cap;
    int first;
    int64_t count;
} Exporter;

static int out_reserve(Exporter *x, size_t more) {
    if (x->n + more <= x->cap) return 0;
    size_t cap = x->cap ? x->cap : OUT_CHUNK * 2;
    while (cap < x->n + more) cap *= 2;
    char *buf = PyMem_Realloc(x->buf, cap);
    if (buf == NULL) { PyErr_NoMemory(); return -1; }
    x->buf = buf; x->cap = cap;
    return 0;
}

static int out_flush(Exporter *x) {
    if (x->n == 0) return 0;
    PyObject *data = PyBytes_FromStringAndSize(x->buf, (Py_ssize_t)x->n);
    if (data == NULL) return -1;
    x->n = 0;
    PyObject *r = PyObject_CallOneArg(x->write, data);
    Py_DECREF(data);
    if (r == NULL) return -1;
    Py_DECREF(r);
    return 0;
}

static void out_raw(Exporter *x, const char *p, size_t len) {   /* room reserved */
    memcpy(x->buf + x->n, p, len);
    x->n += len;
}
#define OUT_LIT(x, lit) out_raw(x, lit, sizeof lit - 1)

static void out_int(Exporter *x, int64_t v) {
    char tmp[24];
    int i = 24;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do { tmp[--i] = (char)('0' + u % 10); u /= 10; } while (u);
    if (v < 0) tmp[--i] = '-';
    out_raw(x, tmp + i, (size_t)(24 - i));
}

static void out_us(Exporter *x, int64_t ns) {   /* |ns| < EXACT_NS */
    if (ns < 0) OUT_LIT(x, "-");
    uint64_t a = ns < 0 ? 0 - (uint64_t)ns : (uint64_t)ns;
    out_int(x, (int64_t)(a / 1000));
    OUT_LIT(x, ".");
    unsigned frac = (unsigned)(a % 1000);
    char digits[3] = {(char)('0' + frac / 100), (char)('0' + frac / 10 % 10), (char)('0' + frac % 10)};
    size_t len = frac % 100 == 0 ? 1 : frac % 10 == 0 ? 2 : 3;
    out_raw(x, digits, len);
}

/* Start one trace event of the array (the separator before it). */
static void out_event(Exporter *x) {
    if (x->first) OUT_LIT(x, "\n"); else OUT_LIT(x, ",\n");
    x->first = 0;
    x->count++;
}

static int flow_take(Exporter *x, int64_t flow) {   /* 1 when it was open (now closed) */
    Slot *slot = map_find(&x->flows, flow);
    if (slot == NULL) return 0;
    map_del(&x->flows, slot);
    return 1;
}

static PyObject *site_pair(Exporter *x, int64_t site) {   /* borrowed */
    Slot *slot = map_find(&x->site_index, site);
    return slot ? PyList_GET_ITEM(x->fragments, slot->a) : x->unknown;
}

static int safe_ns(int64_t ns) { return ns > -EXACT_NS && ns < EXACT_NS; }

/* A call or Deferred callback row as tracer.export writes it: its slice, and the end of
 * the flow that led to it; 1 when the row is left to Python (times too large to write
 * here, a timer flow id past int64, an exception name). */
static int export_ended(Exporter *x, int row, Event *e) {
    int64_t dur = e->dur > 0 ? e->dur : 0;
    if (!safe_ns(dur) || !safe_ns(e->t) || !safe_ns(e->t - dur) || e->has_exc) return 1;
    int64_t start = e->t - dur, flow = 0;
    int has_flow = 0;
    if (row == DCALL) {
        has_flow = 1; flow = e->d;
    } else if (e->has_x && e->id != 0 && e->kind_len == 5 && memcmp(e->kind, "timer", 5) == 0) {
        if (e->id > INT64_MAX - TIMER_FLOW) return 1;
        has_flow = 1; flow = e->id + TIMER_FLOW;
    }
    PyObject *pair = site_pair(x, e->site);
    PyObject *name = PyTuple_GET_ITEM(pair, 0), *where = PyTuple_GET_ITEM(pair, 1);
    const char *cat = row == DCALL ? "deferred" : e->kind;
    size_t cat_len = row == DCALL ? 8 : (size_t)e->kind_len;
    if (out_reserve(x, 300 + 2 * cat_len + (size_t)PyBytes_GET_SIZE(name)
                        + (size_t)PyBytes_GET_SIZE(where)) < 0)
        return -1;
    out_event(x);
    OUT_LIT(x, "{\"ph\":\"X\",\"name\":");
    out_raw(x, PyBytes_AS_STRING(name), (size_t)PyBytes_GET_SIZE(name));
    OUT_LIT(x, ",\"cat\":\"");
    out_raw(x, cat, cat_len);
    OUT_LIT(x, "\",\"ts\":");
    out_us(x, start);
    OUT_LIT(x, ",\"dur\":");
    out_us(x, dur);
    OUT_LIT(x, ",\"pid\":1,\"tid\":1,\"args\":");
    out_raw(x, PyBytes_AS_STRING(where), (size_t)PyBytes_GET_SIZE(where) - 1);   /* no '}' */
    OUT_LIT(x, ",\"depth\":");
    out_int(x, e->depth);
    OUT_LIT(x, "}}");
    if (has_flow && flow_take(x, flow)) {
        out_event(x);
        OUT_LIT(x, "{\"ph\":\"f\",\"bp\":\"e\",\"id\":");
        out_int(x, flow);
        OUT_LIT(x, ",\"name\":\"");
        out_raw(x, cat, cat_len);
        OUT_LIT(x, "\",\"cat\":\"flow\",\"ts\":");
        out_us(x, start);
        OUT_LIT(x, ",\"pid\":1,\"tid\":1}");
    }
    return 0;
}

/* A Deferred's creation or a timer's scheduling: the start of a flow. */
static int export_flow_start(Exporter *x, int row, Event *e) {
    if (!safe_ns(e->t) || (row == TIMER && e->id > INT64_MAX - TIMER_FLOW)) return 1;
    int64_t flow = row == DNEW ? e->d : e->id + TIMER_FLOW;
    if (map_put(&x->flows, flow) == NULL || out_reserve(x, 200) < 0) return -1;
    out_event(x);
    OUT_LIT(x, "{\"ph\":\"s\",\"id\":");
    out_int(x, flow);
    if (row == DNEW) OUT_LIT(x, ",\"name\":\"deferred\""); else OUT_LIT(x, ",\"name\":\"timer\"");
    OUT_LIT(x, ",\"cat\":\"flow\",\"ts\":");
    out_us(x, e->t);
    OUT_LIT(x, ",\"pid\":1,\"tid\":1}");
    return 0;
}

static PyObject *Exporter_feed(Exporter *x, PyObject *args) {
    Lines lines;
    Event e;
    int row;
    if (!lines_of(args, &lines)) return NULL;
    while ((row = next_row(&lines, &e)) != END) {
        int rc = row == CALL || row == DCALL ? export_ended(x, row, &e)
               : row == DNEW || row == TIMER ? export_flow_start(x, row, &e)
               : row >= 0 ? 0 : 1;   /* dadd, dfire and poll rows are not exported */
        if (rc < 0) return NULL;
        if (rc > 0) {
            PyObject *r = call_slow(x->slow, &lines);
            if (r == NULL) return NULL;
            Py_DECREF(r);
        }
        if (x->n >= OUT_CHUNK && out_flush(x) < 0) return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *Exporter_emit(Exporter *x, PyObject *arg) {
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "emit() takes the bytes of one trace event");
        return NULL;
    }
    if (out_reserve(x, (size_t)PyBytes_GET_SIZE(arg) + 2) < 0) return NULL;
    out_event(x);
    out_raw(x, PyBytes_AS_STRING(arg), (size_t)PyBytes_GET_SIZE(arg));
    if (x->n >= OUT_CHUNK && out_flush(x) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *Exporter_site(Exporter *x, PyObject *args) {
    long long id;
    PyObject *name, *where;
    if (!PyArg_ParseTuple(args, "LSS", &id, &name, &where)) return NULL;
    if (PyBytes_GET_SIZE(where) < 2 || PyBytes_AS_STRING(where)[PyBytes_GET_SIZE(where) - 1] != '}') {
        PyErr_SetString(PyExc_ValueError, "where must be the bytes of a JSON object");
        return NULL;
    }
    PyObject *pair = PyTuple_Pack(2, name, where);
    if (pair == NULL) return NULL;
    Slot *slot = map_find(&x->site_index, id);
    if (slot != NULL) {
        PyList_SetItem(x->fragments, slot->a, pair);   /* steals pair */
    } else {
        if ((slot = map_put(&x->site_index, id)) == NULL) { Py_DECREF(pair); return NULL; }
        slot->a = PyList_GET_SIZE(x->fragments);
        int rc = PyList_Append(x->fragments, pair);
        Py_DECREF(pair);
        if (rc < 0) return NULL;
    }
    Py_RETURN_NONE;
}

/* The open flows, as a set of ints: tracer.export's Python step adds, tests and discards. */
static int flow_key(PyObject *flow, int64_t *key) {   /* 1: fits int64, 0: does not, -1 */
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(flow, &overflow);
    if (v == -1 && PyErr_Occurred()) return -1;
    *key = v;
    return !overflow;
}

static PyObject *Exporter_add(Exporter *x, PyObject *flow) {
    int64_t key;
    int fits = flow_key(flow, &key);
    if (fits < 0) return NULL;
    if (fits ? map_put(&x->flows, key) == NULL : PySet_Add(x->big_flows, flow) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *Exporter_discard(Exporter *x, PyObject *flow) {
    int64_t key;
    int fits = flow_key(flow, &key);
    if (fits < 0) return NULL;
    if (fits) flow_take(x, key);
    else if (PySet_Discard(x->big_flows, flow) < 0) return NULL;
    Py_RETURN_NONE;
}

static int Exporter_contains(Exporter *x, PyObject *flow) {
    int64_t key;
    int fits = flow_key(flow, &key);
    if (fits < 0) return -1;
    return fits ? map_find(&x->flows, key) != NULL : PySet_Contains(x->big_flows, flow);
}

static PyObject *Exporter_flush(Exporter *x, PyObject *Py_UNUSED(ignored)) {
    if (out_flush(x) < 0) return NULL;
    return PyLong_FromLongLong(x->count);
}

static int Exporter_init(Exporter *x, PyObject *args, PyObject *kwds) {
    static char *names[] = {"write", "slow", "unknown_name", "unknown_where", NULL};
    PyObject *write, *slow, *name, *where;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOSS", names, &write, &slow, &name, &where))
        return -1;
    if (x->fragments != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "an Exporter is initialised once");
        return -1;
    }
    Py_INCREF(write); x->write = write;
    Py_INCREF(slow); x->slow = slow;
    x->first = 1;
    x->fragments = PyList_New(0);
    x->unknown = PyTuple_Pack(2, name, where);
    x->big_flows = PySet_New(NULL);
    return x->fragments && x->unknown && x->big_flows ? 0 : -1;
}

static void Exporter_dealloc(Exporter *x) {
    Py_XDECREF(x->write); Py_XDECREF(x->slow); Py_XDECREF(x->fragments);
    Py_XDECREF(x->unknown); Py_XDECREF(x->big_flows);
    PyMem_Free(x->site_index.slots); PyMem_Free(x->flows.slots); PyMem_Free(x->buf);
    Py_TYPE(x)->tp_free((PyObject *)x);
}

static PyMethodDef Exporter_methods[] = {
    {"feed", (PyCFunction)Exporter_feed, METH_VARARGS,
     "feed(block, first_lineno): export the complete lines of ``block``; ``slow(line, lineno)``\n"
     "takes the lines that are not rows written here."},
    {"emit", (PyCFunction)Exporter_emit, METH_O, "emit(data): one trace event, its JSON bytes."},
    {"site", (PyCFunction)Exporter_site, METH_VARARGS,
     "site(id, name_json, where_json): how the slices of site ``id`` name it."},
    {"add", (PyCFunction)Exporter_add, METH_O, "Open a flow."},
    {"discard", (PyCFunction)Exporter_discard, METH_O, "Close a flow if it is open."},
    {"flush", (PyCFunction)Exporter_flush, METH_NOARGS,
     "Write what is buffered; returns the number of trace events written."},
    {NULL}
};

static PySequenceMethods Exporter_sequence = {.sq_contains = (objobjproc)Exporter_contains};

static PyTypeObject ExporterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tracer._scan.Exporter",
    .tp_basicsize = sizeof(Exporter),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Exporter(write, slow, unknown_name, unknown_where): the Chrome export of trace\n"
              "lines, buffered to ``write``; also the set of open flows (add, discard, in).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Exporter_init,
    .tp_dealloc = (destructor)Exporter_dealloc,
    .tp_methods = Exporter_methods,
    .tp_as_sequence = &Exporter_sequence,
};

/* -- the Python type ----------------------------------------------------------------- */

/* The code of event kind ``name`` in the index, numbered in the order kinds are first met. */
static int kind_code(Scanner *s, PyObject *name, int *code) {
    PyObject *known = PyDict_GetItemWithError(s->kind_codes, name);
    if (known != NULL) { *code = (int)PyLong_AsLong(known); return 0; }
    if (PyErr_Occurred()) return -1;
    Py_ssize_t n = PyList_GET_SIZE(s->kind_names);
    *code = n < 65535 ? (int)n : 65535;   /* tracer.model.TraceModel's bound */
    PyObject *number = PyLong_FromLong(*code);
    int rc = number ? PyDict_SetItem(s->kind_codes, name, number) : -1;
    Py_XDECREF(number);
    return rc < 0 ? -1 : PyList_Append(s->kind_names, name);
}

/* Hold one event in the index: its line, its time (no earlier than the one before, as
 * tracer.model.TraceModel keeps times) and its kind. */
static int index_event(Scanner *s, Lines *l, int has_t, int64_t t, int code) {
    size_t n = s->offsets.n;
    if (!has_t) t = 0;
    if (n && t < s->times.v[n - 1]) t = s->times.v[n - 1];
    if (ints_push(&s->offsets, l->offset + (l->line - l->start)) < 0 || ints_push(&s->times, t) < 0)
        return -1;
    if (n == s->index_cap) {
        size_t cap = s->index_cap ? s->index_cap * 2 : 1024;
        uint32_t *lengths = PyMem_Realloc(s->lengths, cap * sizeof *lengths);
        if (lengths != NULL) s->lengths = lengths;
        uint16_t *kinds = lengths ? PyMem_Realloc(s->kinds, cap * sizeof *kinds) : NULL;
        if (kinds == NULL) { PyErr_NoMemory(); return -1; }
        s->kinds = kinds; s->index_cap = cap;
    }
    s->lengths[n] = (uint32_t)(l->line_end - l->line);
    s->kinds[n] = (uint16_t)code;
    return 0;
}

static int row_code(Scanner *s, int row, int *code) {
    if (s->row_codes[row] >= 0) { *code = s->row_codes[row]; return 0; }
    PyObject *name = PyUnicode_FromStringAndSize(ROWS[row].name, ROWS[row].name_len);
    int rc = name ? kind_code(s, name, code) : -1;
    Py_XDECREF(name);
    if (rc == 0) s->row_codes[row] = *code;
    return rc;
}

static PyObject *Scanner_feed(Scanner *s, PyObject *args) {
    Lines lines;
    Event e;
    int row, code = 0;
    if (!lines_of(args, &lines)) return NULL;
    while ((row = next_row(&lines, &e)) != END) {
        int64_t index = s->events;
        if (row >= 0) {
            if (s->indexing && (row_code(s, row, &code) < 0 || index_event(s, &lines, 1, e.t, code) < 0))
                return NULL;
            s->events++;
            if (e.t > s->t_ns) s->t_ns = e.t;
            if (row == POLL && e.busy && e.wait < NO_SLEEP_NS) {
                /* a poll that did not sleep, with a descriptor writable: the descriptors'
                 * busy polls, in Python (StateBuilder._poll) */
                PyObject *ev = call_slow(s->slow, &lines);
                int rc = ev == NULL ? -1 : ev == Py_None ? 0 : call_cold(s, ev, index);
                Py_XDECREF(ev);
                if (rc < 0) return NULL;
            } else if (apply_row(s, row, &e, index) < 0) {
                return NULL;
            }
            continue;
        }
        PyObject *ev = call_slow(s->slow, &lines);
        if (ev == NULL) return NULL;
        if (ev != Py_None && PyDict_Check(ev)) {
            int64_t t = 0;
            int has_t = int_field(ev, "t", &t);
            PyObject *kind = PyDict_GetItemString(ev, "ev");
            int rc = has_t < 0 || kind == NULL ? -1 : 0;
            if (rc == 0 && s->indexing)
                rc = kind_code(s, kind, &code) < 0 ? -1 : index_event(s, &lines, has_t, t, code);
            if (rc == 0) {
                s->events++;
                if (has_t && t > s->t_ns) s->t_ns = t;
                rc = apply_object(s, ev, index);
            }
            if (rc < 0) { Py_DECREF(ev); return NULL; }
        }
        Py_DECREF(ev);
    }
    Py_RETURN_NONE;
}

/* Sort in place, ascending: a least-significant-digit radix sort, 8 bits a pass (a pass
 * whose digit is the same for every value is skipped), so the summary's exact percentiles
 * cost a few passes over millions of durations rather than a comparison sort. */
static int ints_sort(Ints *a) {
    if (a->n < 2) return 0;
    uint64_t *keys = (uint64_t *)a->v, *other = PyMem_Malloc(a->n * sizeof *other);
    if (other == NULL) { PyErr_NoMemory(); return -1; }
    for (size_t i = 0; i < a->n; i++) keys[i] ^= 1ULL << 63;   /* signed order as unsigned */
    for (int shift = 0; shift < 64; shift += 8) {
        size_t count[257] = {0};
        for (size_t i = 0; i < a->n; i++) count[((keys[i] >> shift) & 0xff) + 1]++;
        if (count[((keys[0] >> shift) & 0xff) + 1] == a->n) continue;
        for (int d = 0; d < 256; d++) count[d + 1] += count[d];
        for (size_t i = 0; i < a->n; i++) other[count[(keys[i] >> shift) & 0xff]++] = keys[i];
        uint64_t *swap = keys; keys = other; other = swap;
    }
    if (keys != (uint64_t *)a->v) {
        memcpy(a->v, keys, a->n * sizeof *keys);
        other = keys;
    }
    PyMem_Free(other);
    for (size_t i = 0; i < a->n; i++) a->v[i] = (int64_t)((uint64_t)a->v[i] ^ (1ULL << 63));
    return 0;
}

/* The values, sorted, as the bytes of an array('q'). */
static PyObject *ints_bytes(Ints *a) {
    if (ints_sort(a) < 0) return NULL;
    return PyBytes_FromStringAndSize((const char *)a->v, (Py_ssize_t)(a->n * sizeof(int64_t)));
}

static int not_a_copy(Scanner *s) {
    if (s->blocking != NULL) return 1;
    PyErr_SetString(PyExc_RuntimeError, "a snapshot keeps no records: ask the original");
    return 0;
}

static PyObject *Scanner_result(Scanner *s, PyObject *Py_UNUSED(ignored)) {
    if (!not_a_copy(s)) return NULL;
    PyObject *callbacks = PyList_New((Py_ssize_t)s->n_stats);
    if (callbacks == NULL) return NULL;
    for (size_t i = 0; i < s->n_stats; i++) {
        Stats *st = &s->stats[i];
        PyObject *total = wide_to_py(st->total);
        PyObject *durations = total ? ints_bytes(&st->durations) : NULL;
        PyObject *row = durations ? Py_BuildValue("(LOLNLLN)", (long long)st->site, st->kind,
                                                  (long long)st->count, total, (long long)st->max,
                                                  (long long)st->blocking, durations) : NULL;
        if (row == NULL) {
            if (durations == NULL) Py_XDECREF(total);
            Py_DECREF(callbacks);
            return NULL;
        }
        PyList_SET_ITEM(callbacks, (Py_ssize_t)i, row);
    }
    PyObject *lags = ints_bytes(&s->lags);
    if (lags == NULL) { Py_DECREF(callbacks); return NULL; }
    return Py_BuildValue("{sLsLsLsLsnsNsNsOsO}", "events", (long long)s->events,
                         "t_ns", (long long)s->t_ns, "created", (long long)s->created,
                         "fired", (long long)s->fired, "pending", (Py_ssize_t)s->pending.len,
                         "callbacks", callbacks, "lags", lags, "blocking", s->blocking,
                         "stalls", s->stalls);
}

/* A map's entries in the order they were added (a Python dict's). */
static int by_seq(const void *a, const void *b) {
    int64_t x = (*(Slot *const *)a)->seq, y = (*(Slot *const *)b)->seq;
    return (x > y) - (x < y);
}

static Slot **in_order(Map *m) {
    Slot **order = PyMem_Malloc((m->len ? m->len : 1) * sizeof *order);
    if (order == NULL) { PyErr_NoMemory(); return NULL; }
    size_t n = 0;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].used) order[n++] = &m->slots[i];
    qsort(order, n, sizeof *order, by_seq);
    return order;
}

static PyObject *optional(int present, int64_t value) {
    if (present) return PyLong_FromLongLong(value);
    Py_RETURN_NONE;
}

static PyObject *stats_state(Stats *st) {
    PyObject *hist = PyDict_New();
    if (hist == NULL) return NULL;
    for (int i = 0; i < st->hist_n; i++) {
        if (st->hist[i] == 0) continue;
        PyObject *b = PyLong_FromLong(st->hist_lo + i), *n = PyLong_FromUnsignedLong(st->hist[i]);
        int rc = b && n ? PyDict_SetItem(hist, b, n) : -1;
        Py_XDECREF(b); Py_XDECREF(n);
        if (rc < 0) { Py_DECREF(hist); return NULL; }
    }
    PyObject *total = wide_to_py(st->total);
    if (total == NULL) { Py_DECREF(hist); return NULL; }
    return Py_BuildValue("(LOLNLLNLLL)", (long long)st->site, st->kind, (long long)st->count,
                         total, (long long)st->max, (long long)st->blocking, hist,
                         (long long)st->late, (long long)st->lag_max, (long long)st->respawns);
}

static PyObject *pending_state(Slot *slot) {
    Deferred *d = &slot->d;
    return Py_BuildValue("(LLLLNNO)", (long long)slot->key, (long long)d->site,
                         (long long)d->created, (long long)d->callbacks,
                         optional(d->flags & FIRED, d->fired),
                         optional(d->flags & WAITING, d->waiting_on),
                         d->flags & CANCELLED ? Py_True : Py_False);
}

/* A list of ``make(entry)`` for each entry of ``m``, in insertion order. */
static PyObject *map_state(Map *m, PyObject *(*make)(Slot *)) {
    Slot **order = in_order(m);
    if (order == NULL) return NULL;
    PyObject *list = PyList_New((Py_ssize_t)m->len);
    for (size_t i = 0; list != NULL && i < m->len; i++) {
        PyObject *item = make(order[i]);
        if (item == NULL) Py_CLEAR(list);
        else PyList_SET_ITEM(list, (Py_ssize_t)i, item);
    }
    PyMem_Free(order);
    return list;
}

static PyObject *failing_state(Slot *slot) {
    return Py_BuildValue("(LLL)", (long long)slot->key, (long long)slot->a, (long long)slot->b);
}

static PyObject *Scanner_state(Scanner *s, PyObject *Py_UNUSED(ignored)) {
    PyObject *callbacks = PyList_New((Py_ssize_t)s->n_stats);
    for (size_t i = 0; callbacks != NULL && i < s->n_stats; i++) {
        PyObject *row = stats_state(&s->stats[i]);
        if (row == NULL) Py_CLEAR(callbacks);
        else PyList_SET_ITEM(callbacks, (Py_ssize_t)i, row);
    }
    PyObject *pending = callbacks ? map_state(&s->pending, pending_state) : NULL;
    PyObject *failing = pending ? map_state(&s->failing, failing_state) : NULL;
    if (failing == NULL) { Py_XDECREF(callbacks); Py_XDECREF(pending); return NULL; }
    return Py_BuildValue("{sLsLsLsLsLsLsNsNsNsO}", "events", (long long)s->events,
                         "t_ns", (long long)s->t_ns, "created", (long long)s->created,
                         "fired", (long long)s->fired, "blocking", (long long)s->n_blocking,
                         "stalls", (long long)s->n_stalls, "callbacks", callbacks,
                         "pending", pending, "failing", failing,
                         "running", s->running ? s->running : Py_None);
}

static PyObject *Scanner_records(Scanner *s, PyObject *Py_UNUSED(ignored)) {
    if (!not_a_copy(s)) return NULL;
    return Py_BuildValue("(OO)", s->blocking, s->stalls);
}

/* -- copies: the state at a checkpoint ------------------------------------------------- */

static int copy_block(void **to, const void *from, size_t size) {
    *to = NULL;
    if (from == NULL || size == 0) return 0;
    *to = PyMem_Malloc(size);
    if (*to == NULL) { PyErr_NoMemory(); return -1; }
    memcpy(*to, from, size);
    return 0;
}

static int copy_map(Map *to, const Map *from) {
    *to = *from;
    return copy_block((void **)&to->slots, from->slots, from->cap * sizeof *from->slots);
}

static int copy_ints(Ints *to, const Ints *from) {
    *to = (Ints){NULL, from->n, from->n};
    return copy_block((void **)&to->v, from->v, from->n * sizeof *from->v);
}

static PyTypeObject ScannerType;

/* snapshot(sites, slow, cold): an independent copy that goes on from here, naming sites
 * from ``sites`` and handing its lines to ``slow`` and its rare events to ``cold`` (those of
 * another StateBuilder); it has no index and keeps no records, only counts them. */
static PyObject *Scanner_snapshot(Scanner *s, PyObject *args) {
    PyObject *sites, *slow, *cold;
    if (!PyArg_ParseTuple(args, "O!OO", &PyDict_Type, &sites, &slow, &cold)) return NULL;
    if (s->exact) {
        PyErr_SetString(PyExc_RuntimeError, "an exact fold is not copied");
        return NULL;
    }
    Scanner *c = (Scanner *)ScannerType.tp_alloc(&ScannerType, 0);
    if (c == NULL) return NULL;
    /* Copy the plain fields, then give the copy its own arrays and references. */
    memcpy((char *)c + sizeof(PyObject), (char *)s + sizeof(PyObject), sizeof *s - sizeof(PyObject));
    c->stats = NULL; c->n_stats = c->cap_stats = 0;
    c->samples = NULL; c->n_samples = c->cap_samples = 0;
    c->stats_of = c->pending = c->waiters = c->recent = c->failing = c->timers = (Map){0};
    c->recent_order = NULL; c->recent_n = c->recent_cap = 0;
    c->lags = c->chain = c->offsets = c->times = (Ints){0};
    c->lengths = NULL; c->kinds = NULL; c->index_cap = 0; c->indexing = 0;
    c->blocking = c->stalls = NULL;
    c->kind_codes = c->kind_names = NULL;
    Py_INCREF(sites); Py_INCREF(slow); Py_INCREF(cold);
    Py_INCREF(s->dcall_kind); Py_INCREF(s->timer_kind);
    c->sites = sites; c->slow = slow; c->cold = cold;
    Py_XINCREF(s->sample_stack); Py_XINCREF(s->running);
    int failed = copy_map(&c->stats_of, &s->stats_of) < 0 || copy_map(&c->pending, &s->pending) < 0
        || copy_map(&c->waiters, &s->waiters) < 0 || copy_map(&c->recent, &s->recent) < 0
        || copy_map(&c->failing, &s->failing) < 0 || copy_map(&c->timers, &s->timers) < 0
        || copy_ints(&c->chain, &s->chain) < 0
        || copy_block((void **)&c->recent_order, s->recent_order, s->recent_cap * 2 * sizeof(int64_t)) < 0
        || copy_block((void **)&c->samples, s->samples, s->n_samples * sizeof *s->samples) < 0
        || copy_block((void **)&c->stats, s->stats, s->n_stats * sizeof *s->stats) < 0;
    if (!failed) {
        c->recent_n = s->recent_n; c->recent_cap = s->recent_cap;
        c->n_samples = c->cap_samples = s->n_samples;
        for (size_t i = 0; i < s->n_samples; i++) Py_INCREF(s->samples[i].stack);
        c->n_stats = c->cap_stats = s->n_stats;
        for (size_t i = 0; i < s->n_stats; i++) {   /* each histogram its own, once copied */
            Stats *st = &c->stats[i];
            Py_INCREF(st->kind);
            st->durations = (Ints){0};
            uint32_t *hist = st->hist;
            if (copy_block((void **)&st->hist, hist, (size_t)st->hist_n * sizeof *hist) < 0) {
                for (size_t j = i + 1; j < s->n_stats; j++) {   /* not theirs to free */
                    Py_INCREF(c->stats[j].kind);
                    c->stats[j].hist = NULL;
                    c->stats[j].durations = (Ints){0};
                }
                failed = 1;
                break;
            }
        }
    }
    if (failed) { Py_DECREF(c); return NULL; }
    return (PyObject *)c;
}

/* -- the line index ------------------------------------------------------------------ */

static int in_index(Scanner *s, Py_ssize_t i) {
    if (i >= 0 && (size_t)i < s->offsets.n) return 1;
    PyErr_Format(PyExc_IndexError, "event %zd outside the index", i);
    return 0;
}

static PyObject *Scanner_line(Scanner *s, PyObject *arg) {
    Py_ssize_t i = PyLong_AsSsize_t(arg);
    if ((i == -1 && PyErr_Occurred()) || !in_index(s, i)) return NULL;
    return Py_BuildValue("(LI)", (long long)s->offsets.v[i], (unsigned int)s->lengths[i]);
}

static PyObject *Scanner_time(Scanner *s, PyObject *arg) {
    Py_ssize_t i = PyLong_AsSsize_t(arg);
    if ((i == -1 && PyErr_Occurred()) || !in_index(s, i)) return NULL;
    return PyLong_FromLongLong(s->times.v[i]);
}

static PyObject *Scanner_kind(Scanner *s, PyObject *arg) {
    Py_ssize_t i = PyLong_AsSsize_t(arg);
    if ((i == -1 && PyErr_Occurred()) || !in_index(s, i)) return NULL;
    PyObject *name = PyList_GET_ITEM(s->kind_names, s->kinds[i]);
    Py_INCREF(name);
    return name;
}

/* Number of events with ``t <= t_ns`` (the times never decrease). */
static PyObject *Scanner_index_at(Scanner *s, PyObject *arg) {
    long long t = PyLong_AsLongLong(arg);
    if (t == -1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError)) return NULL;
        PyErr_Clear();   /* past int64: before every event, or after them all */
        PyObject *zero = PyLong_FromLong(0);
        int negative = zero ? PyObject_RichCompareBool(arg, zero, Py_LT) : -1;
        Py_XDECREF(zero);
        if (negative < 0) return NULL;
        return PyLong_FromSize_t(negative ? 0 : s->times.n);
    }
    size_t lo = 0, hi = s->times.n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->times.v[mid] <= t) lo = mid + 1;
        else hi = mid;
    }
    return PyLong_FromSize_t(lo);
}

static int Scanner_init(Scanner *s, PyObject *args, PyObject *kwds) {
    static char *names[] = {"threshold_ns", "sites", "slow", "cold", "exact", "index", NULL};
    long long threshold;
    PyObject *sites, *slow, *cold;
    int exact = 1, indexing = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "LO!OO|pp", names, &threshold, &PyDict_Type,
                                     &sites, &slow, &cold, &exact, &indexing))
        return -1;
    if (s->blocking != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "a Scanner is initialised once");
        return -1;
    }
    s->threshold = threshold;
    s->exact = exact;
    s->indexing = indexing;
    for (int i = 0; i < 8; i++) s->row_codes[i] = -1;
    Py_INCREF(sites); s->sites = sites;
    Py_INCREF(slow); s->slow = slow;
    Py_INCREF(cold); s->cold = cold;
    s->blocking = PyList_New(0);
    s->stalls = PyList_New(0);
    s->kind_codes = PyDict_New();
    s->kind_names = PyList_New(0);
    s->dcall_kind = PyUnicode_FromString("deferred");
    s->timer_kind = PyUnicode_FromString("timer");
    return s->blocking && s->stalls && s->kind_codes && s->kind_names && s->dcall_kind
        && s->timer_kind ? 0 : -1;
}

static void Scanner_dealloc(Scanner *s) {
    for (size_t i = 0; i < s->n_stats; i++) {
        Py_XDECREF(s->stats[i].kind);
        PyMem_Free(s->stats[i].durations.v);
        PyMem_Free(s->stats[i].hist);
    }
    PyMem_Free(s->stats);
    for (size_t i = 0; i < s->n_samples; i++) Py_DECREF(s->samples[i].stack);
    PyMem_Free(s->samples);
    PyMem_Free(s->stats_of.slots); PyMem_Free(s->pending.slots);
    PyMem_Free(s->waiters.slots); PyMem_Free(s->recent.slots);
    PyMem_Free(s->failing.slots); PyMem_Free(s->timers.slots);
    PyMem_Free(s->recent_order); PyMem_Free(s->lags.v); PyMem_Free(s->chain.v);
    PyMem_Free(s->offsets.v); PyMem_Free(s->times.v); PyMem_Free(s->lengths); PyMem_Free(s->kinds);
    Py_XDECREF(s->sample_stack); Py_XDECREF(s->running);
    Py_XDECREF(s->sites); Py_XDECREF(s->slow); Py_XDECREF(s->cold);
    Py_XDECREF(s->blocking); Py_XDECREF(s->stalls);
    Py_XDECREF(s->kind_codes); Py_XDECREF(s->kind_names);
    Py_XDECREF(s->dcall_kind); Py_XDECREF(s->timer_kind);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

static Py_ssize_t Scanner_len(Scanner *s) {
    return (Py_ssize_t)s->events;
}

static PySequenceMethods Scanner_sequence = {.sq_length = (lenfunc)Scanner_len};

static PyMethodDef Scanner_methods[] = {
    {"feed", (PyCFunction)Scanner_feed, METH_VARARGS,
     "feed(block, first_lineno, offset=0): fold the complete lines of ``block`` (bytes ending\n"
     "in a newline), which starts at byte ``offset`` of the file (for the index)."},
    {"result", (PyCFunction)Scanner_result, METH_NOARGS,
     "The fold so far, as a dict (tracer.scan turns it into the summary's state); the\n"
     "durations and lags come sorted."},
    {"state", (PyCFunction)Scanner_state, METH_NOARGS,
     "The state the fold holds, as a dict of plain values (tracer.indexed makes the\n"
     "TraceState): counts, per-site statistics with their histograms, the pending and the\n"
     "failing Deferreds in the order they came, the call stuck now (its stall event)."},
    {"records", (PyCFunction)Scanner_records, METH_NOARGS,
     "(blocking, stalls): the lists of records, which grow as lines are fed."},
    {"snapshot", (PyCFunction)Scanner_snapshot, METH_VARARGS,
     "snapshot(sites, slow, cold): an independent copy that goes on from here (histogram mode)."},
    {"line", (PyCFunction)Scanner_line, METH_O, "line(i): (offset, length) of event i's line."},
    {"time", (PyCFunction)Scanner_time, METH_O, "time(i): event i's time, never decreasing."},
    {"kind", (PyCFunction)Scanner_kind, METH_O, "kind(i): event i's kind."},
    {"index_at", (PyCFunction)Scanner_index_at, METH_O,
     "index_at(t_ns): the number of events with t <= t_ns."},
    {NULL}
};

static PyTypeObject ScannerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tracer._scan.Scanner",
    .tp_basicsize = sizeof(Scanner),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Scanner(threshold_ns, sites, slow, cold, exact=True, index=False): the fold of\n"
              "trace lines (tracer.model.StateBuilder's, in C), with every duration (exact, the\n"
              "summary's) or histograms, and with a line index when asked.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Scanner_init,
    .tp_dealloc = (destructor)Scanner_dealloc,
    .tp_methods = Scanner_methods,
    .tp_as_sequence = &Scanner_sequence,
};

static struct PyModuleDef scan_module = {
    PyModuleDef_HEAD_INIT, "tracer._scan",
    "Whole-trace passes in C: the summary's fold (tracer/scan.py) and the Chrome export\n"
    "(tracer/export.py).", -1, NULL, NULL,
    NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__scan(void) {
    if (PyType_Ready(&ScannerType) < 0 || PyType_Ready(&ExporterType) < 0) return NULL;
    PyObject *module = PyModule_Create(&scan_module);
    if (module == NULL) return NULL;
    Py_INCREF(&ScannerType);
    Py_INCREF(&ExporterType);
    if (PyModule_AddObject(module, "Scanner", (PyObject *)&ScannerType) < 0
        || PyModule_AddObject(module, "Exporter", (PyObject *)&ExporterType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
