/* Compiled kernels of scoring's hot loops. Each has a numpy twin in Python that gives the same result.
 *
 * scan_battles   count the flat {"model_a", "model_b", "winner"} lines of a battle log per pair and outcome,
 *                and its other lines as distinct lines (scoring.loaders)
 * poisson_tables the Poisson CDF tables (scoring.multinomial)
 * poisson_fill   Poisson counts by inversion of tabulated CDFs (scoring.multinomial)
 * categorical_add  categorical top-up draws (scoring.multinomial)
 * half_chord     chord-Newton refits of half-tie Bradley-Terry for a chunk of rounds (scoring.bt_bootstrap)
 * style_terms    gradient and structured Hessian of style control's objective, one pass over the rows (scoring.style)
 * spd_solve      a Cholesky solve of a symmetric positive definite system (scoring.style's Newton steps)
 * poisson_classes  Poisson counts of cells that share their CDF tables by class (scoring.style_draws)
 *
 * Random numbers come from a numpy BitGenerator (its "BitGenerator" capsule) and are taken in the order in which
 * numpy's Generator.random would produce them, so that the numpy twins draw exactly the same numbers.
 * Arrays are passed through the buffer protocol: no numpy headers are needed to build this file.
 * Every loop runs without the GIL.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* numpy/random/bitgen.h */
typedef struct {
    void *state;
    uint64_t (*next_uint64)(void *st);
    uint32_t (*next_uint32)(void *st);
    double (*next_double)(void *st);
    uint64_t (*next_raw)(void *st);
} bitgen_t;

/* ------------------------------------------------------------------------------------------------ buffers */

/* Get a C-contiguous buffer of items of `itemsize` bytes whose format is one of `formats`. */
static int get_array(PyObject *obj, Py_buffer *view, Py_ssize_t itemsize, const char *formats, int writable,
                     const char *name) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) return -1;
    const char *format = view->format ? view->format : "B";
    if (*format == '<' || *format == '=' || *format == '@') format++;
    if (view->itemsize != itemsize || strlen(format) != 1 || !strchr(formats, *format)) {
        PyErr_Format(PyExc_TypeError, "%s: expected items of %zd bytes (%s), got format %s", name, itemsize,
                     formats, view->format ? view->format : "B");
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static bitgen_t *get_bitgen(PyObject *capsule) {
    return (bitgen_t *)PyCapsule_GetPointer(capsule, "BitGenerator");
}

/* -------------------------------------------------------------------------------------------- scan_battles */

static inline uint64_t load64(const char *p) {
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

static inline uint64_t mix64(uint64_t h) {
    h ^= h >> 31;
    h *= 0x94D049BB133111EBULL;
    h ^= h >> 32;
    return h | 1;
}

static uint64_t hash_bytes(const char *p, size_t n) {
    if (n >= 8 && n <= 16) /* model names: two overlapping words, no loop */
        return mix64((load64(p) * 0xBF58476D1CE4E5B9ULL) ^ (load64(p + n - 8) + n) * 0x9E3779B97F4A7C15ULL);
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ (n * 0xBF58476D1CE4E5B9ULL);
    while (n >= 8) {
        h = (h ^ load64(p)) * 0xBF58476D1CE4E5B9ULL;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    if (n) {
        uint64_t w = 0;
        memcpy(&w, p, n);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ULL;
    }
    return mix64(h);
}

static inline int same_bytes(const char *a, const char *b, size_t n) {
    if (n >= 8 && n <= 16) return load64(a) == load64(b) && load64(a + n - 8) == load64(b + n - 8);
    return memcmp(a, b, n) == 0;
}

typedef struct {
    uint64_t hash;
    size_t index; /* index + 1, 0 where free */
} StringSlot;

/* Distinct byte strings, numbered in the order they were first added, with a count and a first line each. */
typedef struct {
    char *bytes; /* the strings, one after another */
    size_t used, size;
    int64_t *start, *length, *count, *first;
    uint64_t *hash;
    size_t n, capacity;
    StringSlot *slots; /* open addressing */
    size_t mask;
} Strings;

static int strings_rehash(Strings *s, size_t size) {
    StringSlot *slots = calloc(size, sizeof *slots);
    if (!slots) return -1;
    for (size_t i = 0; i < s->n; i++) {
        size_t slot = s->hash[i] & (size - 1);
        while (slots[slot].index) slot = (slot + 1) & (size - 1);
        slots[slot] = (StringSlot){s->hash[i], i + 1};
    }
    free(s->slots);
    s->slots = slots;
    s->mask = size - 1;
    return 0;
}

static int strings_append(Strings *s, const char *p, size_t n, uint64_t h, int64_t line) {
    if (s->n == s->capacity) {
        size_t capacity = s->capacity ? 2 * s->capacity : 256;
        int64_t **arrays[] = {&s->start, &s->length, &s->count, &s->first};
        for (int k = 0; k < 4; k++) {
            int64_t *grown = realloc(*arrays[k], capacity * sizeof(int64_t));
            if (!grown) return -1;
            *arrays[k] = grown;
        }
        uint64_t *hash = realloc(s->hash, capacity * sizeof *hash);
        if (!hash) return -1;
        s->hash = hash;
        s->capacity = capacity;
    }
    if (s->used + n > s->size) {
        size_t size = s->size ? s->size : 1 << 16;
        while (s->used + n > size) size *= 2;
        char *bytes = realloc(s->bytes, size);
        if (!bytes) return -1;
        s->bytes = bytes;
        s->size = size;
    }
    if (n) memcpy(s->bytes + s->used, p, n);
    size_t i = s->n++;
    s->start[i] = (int64_t)s->used;
    s->length[i] = (int64_t)n;
    s->count[i] = 0;
    s->first[i] = line;
    s->hash[i] = h;
    s->used += n;
    return 4 * s->n > s->mask + 1 ? strings_rehash(s, 2 * (s->mask + 1)) : 0;
}

/* Return the index of the string (adding it, first met on `line`, if new), or -1 when out of memory. */
static int64_t strings_find(Strings *s, const char *p, size_t n, int64_t line) {
    if (!s->slots && strings_rehash(s, 1024) < 0) return -1;
    uint64_t h = hash_bytes(p, n);
    size_t slot = h & s->mask;
    for (; s->slots[slot].index; slot = (slot + 1) & s->mask) {
        if (s->slots[slot].hash != h) continue;
        size_t i = s->slots[slot].index - 1;
        if ((size_t)s->length[i] == n && same_bytes(s->bytes + s->start[i], p, n)) return (int64_t)i;
    }
    size_t i = s->n;
    if (strings_append(s, p, n, h, line) < 0) return -1;
    if (s->mask + 1 > 4 * s->n) s->slots[slot] = (StringSlot){h, i + 1}; /* else the rehash placed it */
    return (int64_t)i;
}

static void strings_free(Strings *s) {
    free(s->bytes);
    free(s->start);
    free(s->length);
    free(s->count);
    free(s->first);
    free(s->hash);
    free(s->slots);
}

static PyObject *strings_list(const Strings *s) {
    PyObject *list = PyList_New((Py_ssize_t)s->n);
    for (size_t i = 0; list && i < s->n; i++) {
        PyObject *item = PyBytes_FromStringAndSize(s->bytes + s->start[i], (Py_ssize_t)s->length[i]);
        if (!item) Py_CLEAR(list);
        else PyList_SET_ITEM(list, (Py_ssize_t)i, item);
    }
    return list;
}

/* The parsers below read lines that end with a '\n' (in the buffer, just past `end`): no scan runs past it. */
static inline const char *skip_blanks(const char *p) {
    while (*p == ' ' || *p == '\t') p++;
    return p;
}

/* Whether the n bytes at p are the literal (n a constant where this is inlined, so memcmp compiles to loads). */
static inline int at_literal(const char *p, const char *end, const char *literal, size_t n) {
    return (size_t)(end - p) >= n && memcmp(p, literal, n) == 0;
}

/* Match the quoted key (given with its quotes), blanks, ':' and blanks; return the position after them or NULL. */
static inline const char *expect_key(const char *p, const char *end, const char *quoted, size_t n) {
    if (!at_literal(p, end, quoted, n)) return NULL;
    p = skip_blanks(p + n);
    if (*p != ':') return NULL;
    return skip_blanks(p + 1);
}

/* Match a string without escapes or control characters; set its span, return the position after it or NULL. */
static inline const char *expect_value(const char *p, const char **value, size_t *length) {
    if (*p != '"') return NULL;
    const char *q = ++p;
    for (;; q++) {
        unsigned char c = (unsigned char)*q; /* the final '\n' is a control character: the loop ends there */
        if (c > '"' && c != '\\') continue; /* the usual case: letters, digits, '-' */
        if (c == '"') break;
        if (c == '\\' || c < 0x20) return NULL;
    }
    *value = p;
    *length = (size_t)(q - p);
    return q + 1;
}

/* Match blanks, the separator and blanks; return the position after them or NULL. */
static inline const char *expect_separator(const char *p, char separator) {
    p = skip_blanks(p);
    if (*p != separator) return NULL;
    return skip_blanks(p + 1);
}

/* Parse {"model_a": "A", "model_b": "B", "winner": "W"} with blanks between tokens and trailing blanks or CR
   (what scoring.loaders._SIMPLE_BATTLE matches); return 0 if the line matches. *end must be '\n'. */
static int parse_flat(const char *p, const char *end, const char *values[3], size_t lengths[3]) {
    p = skip_blanks(p);
    if (*p != '{') return -1;
    p = skip_blanks(p + 1);
    if (!(p = expect_key(p, end, "\"model_a\"", 9)) || !(p = expect_value(p, &values[0], &lengths[0])) ||
        !(p = expect_separator(p, ',')) || !(p = expect_key(p, end, "\"model_b\"", 9)) ||
        !(p = expect_value(p, &values[1], &lengths[1])) || !(p = expect_separator(p, ',')) ||
        !(p = expect_key(p, end, "\"winner\"", 8)) || !(p = expect_value(p, &values[2], &lengths[2])) ||
        !(p = expect_separator(p, '}')))
        return -1;
    while (*p == ' ' || *p == '\t' || *p == '\r') p++;
    return p == end ? 0 : -1;
}

/* Return the code of an outcome label (scoring.battles.OUTCOMES), or -1. */
static inline int outcome_of(const char *p, size_t n) {
    switch (n) {
    case 7:
        return at_literal(p, p + n, "model_a", 7) ? 0 : at_literal(p, p + n, "model_b", 7) ? 1 : -1;
    case 3:
        return at_literal(p, p + n, "tie", 3) ? 2 : -1;
    case 13:
        return at_literal(p, p + n, "tie (bothbad)", 13) ? 3 : -1;
    default:
        return -1;
    }
}

/* A validating JSON reader for whole records, used where a line (or an array element) is not a flat battle. The
   data it reads ends with a NUL byte at `limit` (a sentinel): reaching it means the record goes on past the data
   read so far (J_MORE); a NUL anywhere else, or anything that is not JSON, is J_BAD. Newlines between tokens are
   counted (array elements span lines). */
enum { J_OK = 0, J_BAD = 1, J_MORE = 2 };
#define MAX_DEPTH 256

typedef struct {
    const char *limit;
    int64_t newlines;
} Doc;

static inline const char *json_blanks(Doc *d, const char *p) {
    for (;; p++) {
        char c = *p;
        if (c == ' ' || c == '\t' || c == '\r') continue;
        if (c == '\n') {
            d->newlines++;
            continue;
        }
        return p;
    }
}

static inline int stop_at(const Doc *d, const char *p) { return p >= d->limit ? J_MORE : J_BAD; }

static inline int is_digit(char c) { return c >= '0' && c <= '9'; }

static inline int is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

/* Skip the string at p (its opening quote); set *end past its closing quote and *escaped if it has escapes. */
static int json_string(const Doc *d, const char *p, const char **end, int *escaped) {
    *escaped = 0;
    for (p++;;) {
        unsigned char c = (unsigned char)*p;
        if (c > '"' && c != '\\') {
            p++;
            continue;
        }
        if (c == '"') {
            *end = p + 1;
            return J_OK;
        }
        if (c == '\\') {
            *escaped = 1;
            char e = p[1];
            if (e == 'u') {
                for (int k = 2; k < 6; k++)
                    if (!is_hex(p[k])) return stop_at(d, p + k);
                p += 6;
            } else if (e && strchr("\"\\/bfnrt", e)) {
                p += 2;
            } else {
                return stop_at(d, p + 1);
            }
            continue;
        }
        if (c < 0x20) return stop_at(d, p);
        p++;
    }
}

static int json_number(const Doc *d, const char *p, const char **end) {
    if (*p == '-') p++;
    if (*p == '0') p++;
    else if (*p >= '1' && *p <= '9')
        while (is_digit(*p)) p++;
    else return stop_at(d, p);
    if (*p == '.') {
        if (!is_digit(*++p)) return stop_at(d, p);
        while (is_digit(*p)) p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!is_digit(*p)) return stop_at(d, p);
        while (is_digit(*p)) p++;
    }
    if (p >= d->limit) return J_MORE; /* the number may go on */
    *end = p;
    return J_OK;
}

static int json_literal(const Doc *d, const char *p, const char **end, const char *word, size_t n) {
    for (size_t k = 0; k < n; k++)
        if (p[k] != word[k]) return stop_at(d, p + k);
    *end = p + n;
    return J_OK;
}

static int json_value(Doc *d, const char *p, const char **end, int depth);

/* Skip the object at p (its '{'); call `on_key` hooks through the caller's loop instead: see record_object. */
static int json_object(Doc *d, const char *p, const char **end, int depth) {
    if (depth > MAX_DEPTH) return J_BAD;
    int escaped, status;
    p = json_blanks(d, p + 1);
    if (*p == '}') {
        *end = p + 1;
        return J_OK;
    }
    for (;;) {
        if (*p != '"') return stop_at(d, p);
        if ((status = json_string(d, p, &p, &escaped))) return status;
        p = json_blanks(d, p);
        if (*p != ':') return stop_at(d, p);
        if ((status = json_value(d, json_blanks(d, p + 1), &p, depth + 1))) return status;
        p = json_blanks(d, p);
        if (*p == ',') {
            p = json_blanks(d, p + 1);
            continue;
        }
        if (*p == '}') {
            *end = p + 1;
            return J_OK;
        }
        return stop_at(d, p);
    }
}

static int json_array(Doc *d, const char *p, const char **end, int depth) {
    if (depth > MAX_DEPTH) return J_BAD;
    int status;
    p = json_blanks(d, p + 1);
    if (*p == ']') {
        *end = p + 1;
        return J_OK;
    }
    for (;;) {
        if ((status = json_value(d, p, &p, depth + 1))) return status;
        p = json_blanks(d, p);
        if (*p == ',') {
            p = json_blanks(d, p + 1);
            continue;
        }
        if (*p == ']') {
            *end = p + 1;
            return J_OK;
        }
        return stop_at(d, p);
    }
}

static int json_value(Doc *d, const char *p, const char **end, int depth) {
    int escaped;
    switch (*p) {
    case '"':
        return json_string(d, p, end, &escaped);
    case '{':
        return json_object(d, p, end, depth);
    case '[':
        return json_array(d, p, end, depth);
    case 't':
        return json_literal(d, p, end, "true", 4);
    case 'f':
        return json_literal(d, p, end, "false", 5);
    case 'n':
        return json_literal(d, p, end, "null", 4);
    default:
        return json_number(d, p, end);
    }
}

/* Decode the body of a JSON string (between its quotes) into UTF-8 at out (room for n bytes is enough); return
   its length, or -1 for a lone surrogate (which Python reads but UTF-8 cannot hold). */
static ptrdiff_t json_unescape(const char *p, size_t n, char *out) {
    char *o = out;
    const char *end = p + n;
    while (p < end) {
        if (*p != '\\') {
            *o++ = *p++;
            continue;
        }
        char e = p[1];
        if (e != 'u') {
            static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
            *o++ = to[strchr(from, e) - from];
            p += 2;
            continue;
        }
        uint32_t cp = (uint32_t)strtoul((char[5]){p[2], p[3], p[4], p[5], 0}, NULL, 16);
        p += 6;
        if (cp >= 0xDC00 && cp <= 0xDFFF) return -1;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (end - p < 6 || p[0] != '\\' || p[1] != 'u') return -1;
            uint32_t low = (uint32_t)strtoul((char[5]){p[2], p[3], p[4], p[5], 0}, NULL, 16);
            if (low < 0xDC00 || low > 0xDFFF) return -1;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            p += 6;
        }
        if (cp < 0x80) {
            *o++ = (char)cp;
        } else if (cp < 0x800) {
            *o++ = (char)(0xC0 | (cp >> 6));
            *o++ = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            *o++ = (char)(0xE0 | (cp >> 12));
            *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
            *o++ = (char)(0x80 | (cp & 0x3F));
        } else {
            *o++ = (char)(0xF0 | (cp >> 18));
            *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
            *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
            *o++ = (char)(0x80 | (cp & 0x3F));
        }
    }
    return o - out;
}

/* What a record filter asks for (scoring.loaders.BattleFilter); the fields it reads are checked only when asked. */
typedef struct {
    int active, anony_only, dedup, window;
    int style; /* read conv_metadata's style counts (rank --style-control) */
    const char *language, *category;
    size_t language_n, category_n;
    double since, until;
} Filters;

enum { F_MODEL_A, F_MODEL_B, F_WINNER, F_LANGUAGE, N_STRINGS };
/* conv_metadata's style counts, in scoring.style._STYLE_KEYS order: a's tokens, headers, lists, bold, then b's. */
#define N_STYLE 8
static const char *const style_keys[N_STYLE] = {
    "sum_assistant_a_tokens", "header_count_a", "list_count_a", "bold_count_a",
    "sum_assistant_b_tokens", "header_count_b", "list_count_b", "bold_count_b",
};
/* A field's state: missing, present with a usable value, or present with a value of the wrong type. */
enum { MISSING = 0, PRESENT = 1, WRONG = 2 };

typedef struct {
    const char *text[N_STRINGS];
    size_t length[N_STRINGS];
    int has[N_STRINGS], escaped[N_STRINGS];
    int anony, has_anony, sampled, has_sampled, category, has_category, has_tstamp;
    double tstamp;
    int odd; /* something the Python reader should judge (escaped keys) */
    int has_meta, style_has[N_STYLE];
    int64_t style[N_STYLE];
} Record;

static inline int key_is(const char *key, size_t n, const char *name) {
    return strlen(name) == n && memcmp(key, name, n) == 0;
}

static int json_bool(Doc *d, const char *p, const char **end, int *value, int *state) {
    int status = json_value(d, p, end, 1);
    if (status) return status;
    *state = (*p == 't' || *p == 'f') ? PRESENT : WRONG;
    *value = *p == 't';
    return J_OK;
}

/* Read the object at p, calling back for each key: used for the record and for dedup_tag/category_tag. */
typedef int (*KeyHook)(Doc *d, void *ctx, const char *key, size_t n, int escaped, const char *p, const char **end,
                       int depth);

static int json_object_keys(Doc *d, const char *p, const char **end, int depth, KeyHook hook, void *ctx) {
    if (depth > MAX_DEPTH) return J_BAD;
    int escaped, status;
    p = json_blanks(d, p + 1);
    if (*p == '}') {
        *end = p + 1;
        return J_OK;
    }
    for (;;) {
        if (*p != '"') return stop_at(d, p);
        const char *key = p + 1;
        if ((status = json_string(d, p, &p, &escaped))) return status;
        size_t n = (size_t)(p - 1 - key);
        p = json_blanks(d, p);
        if (*p != ':') return stop_at(d, p);
        if ((status = hook(d, ctx, key, n, escaped, json_blanks(d, p + 1), &p, depth + 1))) return status;
        p = json_blanks(d, p);
        if (*p == ',') {
            p = json_blanks(d, p + 1);
            continue;
        }
        if (*p == '}') {
            *end = p + 1;
            return J_OK;
        }
        return stop_at(d, p);
    }
}

typedef struct {
    Record *record;
    const char *path;
    size_t path_n;
} CategoryWalk;

/* category_tag: a key equal to the rest of the path is the answer; a key that is a dotted prefix of it leads on. */
static int category_hook(Doc *d, void *ctx, const char *key, size_t n, int escaped, const char *p, const char **end,
                         int depth) {
    CategoryWalk *walk = ctx;
    if (escaped) walk->record->odd = 1;
    if (walk->record->has_category != MISSING) return json_value(d, p, end, depth); /* the first match counts */
    if (!escaped && n == walk->path_n && memcmp(key, walk->path, n) == 0)
        return json_bool(d, p, end, &walk->record->category, &walk->record->has_category);
    if (!escaped && *p == '{' && n < walk->path_n && walk->path[n] == '.' && memcmp(key, walk->path, n) == 0) {
        CategoryWalk inner = {walk->record, walk->path + n + 1, walk->path_n - n - 1};
        return json_object_keys(d, p, end, depth, category_hook, &inner);
    }
    return json_value(d, p, end, depth);
}

static int dedup_hook(Doc *d, void *ctx, const char *key, size_t n, int escaped, const char *p, const char **end,
                      int depth) {
    Record *record = ctx;
    if (escaped) record->odd = 1;
    if (!escaped && key_is(key, n, "sampled")) return json_bool(d, p, end, &record->sampled, &record->has_sampled);
    return json_value(d, p, end, depth);
}

/* A style count as scoring.style.style_counts reads it: a JSON integer >= 0 is PRESENT, any other number WRONG; a
   minus sign (-0 is a valid 0) or more than 15 digits (past scoring.style.MAX_COUNT) is left to Python (-1).
   p .. end is a validated number. */
#define STYLE_MAX_COUNT 999999999999999LL
static int json_count(const char *p, const char *end, int64_t *value) {
    if (*p == '-') return -1;
    int64_t v = 0;
    for (const char *q = p; q < end; q++) {
        if (!is_digit(*q)) return WRONG;
        if (q - p >= 15) return -1;
        v = 10 * v + (*q - '0');
    }
    *value = v;
    return PRESENT;
}

/* An object of counts ({"h1": 3, ...}): their sum when every value is a count. Keys are compared for duplicates,
   which Python would read as one key (the last value): those records, and escaped keys, are left to Python. */
#define MAX_COUNT_KEYS 16
typedef struct {
    Record *record;
    const char *keys[MAX_COUNT_KEYS];
    size_t lengths[MAX_COUNT_KEYS];
    int n, state;
    int64_t sum;
} CountWalk;

static int count_hook(Doc *d, void *ctx, const char *key, size_t n, int escaped, const char *p, const char **end,
                      int depth) {
    CountWalk *walk = ctx;
    int status = json_value(d, p, end, depth);
    if (status) return status;
    if (escaped || walk->n == MAX_COUNT_KEYS) walk->record->odd = 1;
    for (int i = 0; i < walk->n && !walk->record->odd; i++)
        if (walk->lengths[i] == n && memcmp(walk->keys[i], key, n) == 0) walk->record->odd = 1;
    if (walk->record->odd) return J_OK;
    walk->keys[walk->n] = key;
    walk->lengths[walk->n++] = n;
    int64_t value = 0;
    int state = *p == '-' || is_digit(*p) ? json_count(p, *end, &value) : WRONG;
    if (state < 0 || (state == PRESENT && walk->sum + value > STYLE_MAX_COUNT)) walk->record->odd = 1;
    else if (state == WRONG) walk->state = WRONG;
    else walk->sum += value;
    return J_OK;
}

/* conv_metadata: the eight style counts, each an integer or an object of them (the last of a repeated key). */
static int meta_hook(Doc *d, void *ctx, const char *key, size_t n, int escaped, const char *p, const char **end,
                     int depth) {
    Record *r = ctx;
    if (escaped) r->odd = 1;
    int k = 0;
    while (k < N_STYLE && (escaped || !key_is(key, n, style_keys[k]))) k++;
    if (k == N_STYLE) return json_value(d, p, end, depth);
    if (*p == '{') {
        CountWalk walk = {.record = r, .state = PRESENT};
        int status = json_object_keys(d, p, end, depth, count_hook, &walk);
        r->style_has[k] = walk.state;
        r->style[k] = walk.sum;
        return status;
    }
    int status = json_value(d, p, end, depth);
    if (status) return status;
    int state = *p == '-' || is_digit(*p) ? json_count(p, *end, &r->style[k]) : WRONG;
    if (state < 0) r->odd = 1;
    r->style_has[k] = state < 0 ? WRONG : state;
    return J_OK;
}

typedef struct {
    Record *record;
    const Filters *filters;
} RecordWalk;

static int record_hook(Doc *d, void *ctx, const char *key, size_t n, int escaped, const char *p, const char **end,
                       int depth) {
    RecordWalk *walk = ctx;
    Record *r = walk->record;
    if (escaped) {
        r->odd = 1;
        return json_value(d, p, end, depth);
    }
    static const char *const names[N_STRINGS] = {"model_a", "model_b", "winner", "language"};
    for (int k = 0; k < N_STRINGS; k++) {
        if (!key_is(key, n, names[k])) continue;
        int status = json_value(d, p, end, depth);
        if (status) return status;
        r->has[k] = *p == '"' ? PRESENT : WRONG;
        if (*p == '"') {
            r->text[k] = p + 1;
            r->length[k] = (size_t)(*end - p - 2);
            r->escaped[k] = memchr(p + 1, '\\', r->length[k]) != NULL;
        }
        return J_OK;
    }
    if (key_is(key, n, "anony")) return json_bool(d, p, end, &r->anony, &r->has_anony);
    if (key_is(key, n, "tstamp")) {
        int status = json_value(d, p, end, depth);
        if (status) return status;
        r->has_tstamp = (*p == '-' || is_digit(*p)) ? PRESENT : WRONG;
        if (r->has_tstamp == PRESENT) r->tstamp = strtod(p, NULL);
        return J_OK;
    }
    if (key_is(key, n, "conv_metadata") && walk->filters->style) {
        memset(r->style_has, 0, sizeof r->style_has); /* a repeated key: the last one counts, as in Python */
        r->has_meta = *p == '{' ? PRESENT : WRONG;
        if (*p == '{') return json_object_keys(d, p, end, depth, meta_hook, r);
        return json_value(d, p, end, depth);
    }
    if (key_is(key, n, "dedup_tag") && walk->filters->dedup) {
        r->has_sampled = MISSING;
        if (*p == '{') return json_object_keys(d, p, end, depth, dedup_hook, r);
        r->has_sampled = WRONG;
        return json_value(d, p, end, depth);
    }
    if (key_is(key, n, "category_tag") && walk->filters->category) {
        r->has_category = MISSING;
        r->category = 0;
        if (*p == '{') {
            CategoryWalk inner = {r, walk->filters->category, walk->filters->category_n};
            return json_object_keys(d, p, end, depth, category_hook, &inner);
        }
        r->has_category = WRONG;
        return json_value(d, p, end, depth);
    }
    return json_value(d, p, end, depth);
}

/* Counts per ordered pair of name indices and outcome, the key and its counts side by side (one cache line). */
typedef struct {
    uint64_t key; /* ((a + 1) << 32) | b, 0 where free */
    int64_t counts[4];
} PairSlot;

typedef struct {
    PairSlot *slots;
    size_t n, mask;
} Pairs;

static inline size_t pair_slot(uint64_t key, size_t mask) { return (key * 0x9E3779B97F4A7C15ULL >> 24) & mask; }

static int pairs_grow(Pairs *t) {
    size_t size = t->slots ? 2 * (t->mask + 1) : 1 << 12;
    PairSlot *slots = calloc(size, sizeof *slots);
    if (!slots) return -1;
    for (size_t s = 0; t->slots && s <= t->mask; s++) {
        if (!t->slots[s].key) continue;
        size_t slot = pair_slot(t->slots[s].key, size - 1);
        while (slots[slot].key) slot = (slot + 1) & (size - 1);
        slots[slot] = t->slots[s];
    }
    free(t->slots);
    t->slots = slots;
    t->mask = size - 1;
    return 0;
}

static int pairs_add(Pairs *t, int64_t a, int64_t b, int outcome) {
    uint64_t key = ((uint64_t)(a + 1) << 32) | (uint64_t)b;
    size_t slot = pair_slot(key, t->mask);
    while (t->slots[slot].key && t->slots[slot].key != key) slot = (slot + 1) & t->mask;
    if (!t->slots[slot].key) {
        if (2 * (t->n + 1) > t->mask + 1) {
            if (pairs_grow(t) < 0) return -1;
            return pairs_add(t, a, b, outcome);
        }
        t->slots[slot].key = key;
        t->n++;
    }
    t->slots[slot].counts[outcome]++;
    return 0;
}

typedef struct {
    int parse, array, stopped;
    Filters filters;
    Strings names, odd;
    Pairs pairs;
    int64_t lines, filtered;
    int64_t *rows; /* with filters.style: per battle a, b (name indices), outcome and the eight counts */
    size_t n_rows, rows_capacity;
    char *scratch;
    size_t scratch_size;
    int64_t error_line;
    const char *error;
} Scan;

/* Beyond this many bytes of records left for Python to judge, the scan stops (the caller reads the file itself). */
#define ODD_BYTES (64u << 20)

/* Count a flat battle; return 0, or -1 when out of memory. */
static int count_battle(Scan *scan, const char *values[3], const size_t lengths[3], int outcome, int64_t line) {
    int64_t a = strings_find(&scan->names, values[0], lengths[0], line);
    int64_t b = a < 0 ? -1 : strings_find(&scan->names, values[1], lengths[1], line);
    return b < 0 ? -1 : pairs_add(&scan->pairs, a, b, outcome);
}

/* Keep a battle that passed the filters with its style counts (scoring.loaders.read_style_battles): return 1, 0
   when a count is missing or not a count (Python reports it), -1 when out of memory. */
#define STYLE_ROW (3 + N_STYLE)
static int style_row(Scan *scan, const Record *r, const char *values[], const size_t lengths[], int outcome,
                     int64_t line) {
    if (r->has_meta != PRESENT) return 0;
    for (int k = 0; k < N_STYLE; k++)
        if (r->style_has[k] != PRESENT) return 0;
    if (scan->n_rows == scan->rows_capacity) {
        size_t capacity = scan->rows_capacity ? 2 * scan->rows_capacity : 1 << 14;
        int64_t *grown = realloc(scan->rows, capacity * STYLE_ROW * sizeof(int64_t));
        if (!grown) return -1;
        scan->rows = grown;
        scan->rows_capacity = capacity;
    }
    int64_t a = strings_find(&scan->names, values[0], lengths[0], line);
    int64_t b = a < 0 ? -1 : strings_find(&scan->names, values[1], lengths[1], line);
    if (b < 0) return -1;
    int64_t *row = scan->rows + scan->n_rows++ * STYLE_ROW;
    row[0] = a;
    row[1] = b;
    row[2] = outcome;
    memcpy(row + 3, r->style, sizeof r->style);
    return 1;
}

/* Judge a parsed record as scoring.loaders._filtered_battle does: return 1 when it was counted or filtered out, 0
   when Python should judge it (it may be an error), -1 when out of memory. The checks run in the same order. */
static int count_record(Scan *scan, Record *r, int64_t line) {
    if (r->odd) return 0;
    const char *values[N_STRINGS];
    size_t lengths[N_STRINGS], need = 0;
    const Filters *f = &scan->filters;
    int strings = f->language ? N_STRINGS : 3;
    for (int k = 0; k < strings; k++) {
        if (k < 3 && r->has[k] != PRESENT) return 0;
        need += r->escaped[k] ? r->length[k] : 0;
    }
    if (need > scan->scratch_size) {
        char *grown = realloc(scan->scratch, need);
        if (!grown) return -1;
        scan->scratch = grown;
        scan->scratch_size = need;
    }
    char *out = scan->scratch;
    for (int k = 0; k < strings; k++) {
        values[k] = r->text[k];
        lengths[k] = r->length[k];
        if (r->has[k] == PRESENT && r->escaped[k]) {
            ptrdiff_t n = json_unescape(r->text[k], r->length[k], out);
            if (n < 0) return 0;
            values[k] = out;
            lengths[k] = (size_t)n;
            out += n;
        }
    }
    int outcome = outcome_of(values[2], lengths[2]);
    if (outcome < 0 || (lengths[0] == lengths[1] && memcmp(values[0], values[1], lengths[0]) == 0)) return 0;
    if (f->active) {
        if (f->anony_only) {
            if (r->has_anony != PRESENT) return 0;
            if (!r->anony) goto filtered;
        }
        if (f->language) {
            if (r->has[F_LANGUAGE] != PRESENT) return 0;
            if (lengths[F_LANGUAGE] != f->language_n || memcmp(values[F_LANGUAGE], f->language, f->language_n))
                goto filtered;
        }
        if (f->dedup) {
            if (r->has_sampled == WRONG) return 0;
            if (r->has_sampled == PRESENT && !r->sampled) goto filtered;
        }
        if (f->window) {
            if (r->has_tstamp != PRESENT) return 0;
            if (!(r->tstamp >= f->since && r->tstamp < f->until)) goto filtered;
        }
        if (f->category) {
            if (r->has_category == WRONG) return 0;
            if (r->has_category != PRESENT || !r->category) goto filtered;
        }
    }
    if (f->style) return style_row(scan, r, values, lengths, outcome, line);
    return count_battle(scan, values, lengths, outcome, line) < 0 ? -1 : 1;
filtered:
    scan->filtered++;
    return 1;
}

/* Read the record object at p; return a J_ status and set *end past it. */
static int read_record(Scan *scan, Doc *d, const char *p, const char **end, Record *r) {
    memset(r, 0, sizeof *r);
    RecordWalk walk = {r, &scan->filters};
    return json_object_keys(d, p, end, 1, record_hook, &walk);
}

/* Keep a record for Python to judge; return 0, or -1 when out of memory. */
static int keep_odd(Scan *scan, const char *p, size_t n, int64_t line) {
    int64_t i = strings_find(&scan->odd, p, n, line);
    if (i < 0) return -1;
    scan->odd.count[i]++;
    if (scan->parse && scan->odd.used > ODD_BYTES) scan->stopped = 1;
    return 0;
}

/* Count one line (followed by a '\n' in memory): a battle into the pairs, anything else into the odd lines. */
static int scan_line(Scan *scan, char *p, size_t n, int64_t line) {
    const char *values[3];
    size_t lengths[3];
    if (scan->parse && !scan->filters.active && !scan->filters.style && parse_flat(p, p + n, values, lengths) == 0) {
        int outcome = outcome_of(values[2], lengths[2]);
        if (outcome >= 0 && (lengths[0] != lengths[1] || memcmp(values[0], values[1], lengths[0]) != 0))
            return count_battle(scan, values, lengths, outcome, line);
    }
    if (scan->parse) {
        Doc d = {p + n, 0};
        char saved = p[n];
        p[n] = 0;
        const char *q = json_blanks(&d, p), *end;
        Record r;
        int counted = 0;
        if (*q == '{' && read_record(scan, &d, q, &end, &r) == J_OK && json_blanks(&d, end) == p + n)
            counted = count_record(scan, &r, line);
        p[n] = saved;
        if (counted) return counted < 0 ? -1 : 0;
    }
    return keep_odd(scan, p, n, line);
}

/* Read `left` bytes of the file (or up to its end) and count their lines; return 0, or an errno value. */
static int scan_file(int fd, Scan *scan, uint64_t left) {
    size_t size = 1 << 20, carry = 0;
    char *buf = malloc(size + 1);
    int64_t line = 0;
    if (!buf || (scan->parse && pairs_grow(&scan->pairs) < 0)) {
        free(buf);
        return ENOMEM;
    }
    for (;;) {
        if (carry == size) { /* one line fills the buffer */
            char *grown = realloc(buf, 2 * size + 1);
            if (!grown) {
                free(buf);
                return ENOMEM;
            }
            buf = grown;
            size *= 2;
        }
        ssize_t got = read(fd, buf + carry, (size_t)(size - carry < left ? size - carry : left));
        if (got < 0) {
            if (errno == EINTR) continue;
            int error = errno;
            free(buf);
            return error;
        }
        left -= (uint64_t)got;
        size_t end = carry + (size_t)got;
        char *p = buf, *stop = buf + end, *newline;
        while (!scan->stopped && (newline = memchr(p, '\n', (size_t)(stop - p))) != NULL) {
            if (scan_line(scan, p, (size_t)(newline - p), ++line) < 0) {
                free(buf);
                return ENOMEM;
            }
            p = newline + 1;
        }
        carry = (size_t)(stop - p);
        if (got == 0 || scan->stopped) { /* the last line has no newline: give it one (carry < size, see above) */
            buf[end] = '\n';
            int error = !scan->stopped && carry && scan_line(scan, p, carry, ++line) < 0 ? ENOMEM : 0;
            scan->lines = line;
            free(buf);
            return error;
        }
        memmove(buf, p, carry);
    }
}

/* Read a JSON array of records, streaming: one element at a time is in memory (the buffer grows to the largest).
   Elements that are not objects, or that the record reader leaves to Python, are kept as odd lines numbered by
   their first line; a syntax error stops the scan and is reported (error_line, error). Return 0 or an errno. */
static int scan_array(int fd, Scan *scan) {
    size_t size = 1 << 20, used = 0;
    char *buf = malloc(size + 1);
    if (!buf || pairs_grow(&scan->pairs) < 0) {
        free(buf);
        return ENOMEM;
    }
    int64_t line = 1;
    int eof = 0, state = 0; /* 0 before '[', 1 before an element or ']', 2 before an element, 3 after one, 4 done */
    size_t at = 0;
    /* skip a UTF-8 byte order mark */
    for (;;) {
        buf[used] = 0;
        Doc d = {buf + used, 0};
        const char *p = json_blanks(&d, buf + at), *end = NULL;
        line += d.newlines;
        at = (size_t)(p - buf);
        int status = J_OK;
        if (p < d.limit) {
            if (state == 0) {
                if (at + 3 <= used && memcmp(p, "\xef\xbb\xbf", 3) == 0 && line == 1 && at == 0) {
                    at += 3;
                    continue;
                }
                if (*p != '[') status = J_BAD;
                else end = p + 1, state = 1;
            } else if (state == 1 && *p == ']') {
                end = p + 1, state = 4;
            } else if (state == 1 || state == 2) {
                Doc e = {d.limit, 0};
                Record r;
                if (*p == '{') status = read_record(scan, &e, p, &end, &r);
                else status = json_value(&e, p, &end, 1);
                if (status == J_BAD) line += e.newlines;
                if (status == J_OK) {
                    int counted = *p == '{' ? count_record(scan, &r, line) : 0;
                    if (counted < 0 || (!counted && keep_odd(scan, p, (size_t)(end - p), line) < 0)) {
                        free(buf);
                        return ENOMEM;
                    }
                    line += e.newlines;
                    state = 3;
                }
            } else if (state == 3) {
                if (*p == ',') end = p + 1, state = 2;
                else if (*p == ']') end = p + 1, state = 4;
                else status = J_BAD;
            } else {
                status = J_BAD;
            }
            if (status == J_OK) {
                at = (size_t)(end - buf);
                if (scan->stopped) break;
                continue;
            }
        } else {
            status = J_MORE;
        }
        if (status == J_MORE && eof && state == 4) break;
        if (status == J_BAD || (status == J_MORE && eof)) {
            scan->error_line = line;
            scan->error = status == J_BAD ? (state == 4 ? "invalid JSON (extra data after the array)"
                                                        : "invalid JSON (in an array element)")
                          : state == 0 ? "" : "invalid JSON (the array is not closed)";
            if (state == 0 && status == J_MORE) scan->error = NULL; /* an empty file */
            break;
        }
        /* J_MORE: keep [at, used) and read more */
        memmove(buf, buf + at, used - at);
        used -= at;
        at = 0;
        if (used == size) {
            char *grown = realloc(buf, 2 * size + 1);
            if (!grown) {
                free(buf);
                return ENOMEM;
            }
            buf = grown;
            size *= 2;
        }
        ssize_t got = read(fd, buf + used, size - used);
        if (got < 0) {
            if (errno == EINTR) continue;
            int error = errno;
            free(buf);
            return error;
        }
        eof = got == 0;
        used += (size_t)got;
    }
    scan->lines = line;
    free(buf);
    return 0;
}

PyDoc_STRVAR(scan_battles_doc,
             "scan_battles(path, parse, start=0, stop=-1, array=False, anony_only=False, language=None, dedup=False,\n"
             "             since=-inf, until=inf, category=None, style=False)\n"
             "    -> (names, pairs, counts, lines, line_counts, first, n, filtered, stopped, error, rows)\n\n"
             "Read bytes [start, stop) of a JSON Lines file (stop -1: to its end) line by line (split at \\n), or with\n"
             "array the whole file as one JSON array, streamed element by element; n is the number of lines and line\n"
             "numbers count from the first line of the range. With parse, each line (element) that is a JSON object\n"
             "with string fields model_a, model_b, winner (a known label, A != B) and any other keys is counted per\n"
             "(A, B, W) if it passes the filters (anonymous battles, a language, dedup_tag.sampled not false, since <=\n"
             "tstamp < until, a true value at the dotted path into category_tag), else counted in filtered. names holds\n"
             "the distinct names (UTF-8 bytes), pairs the int32 (A, B) indices of each pair met and counts its int64\n"
             "battles per outcome code (4 per pair). Every other line (element) is kept for the caller to judge, as a\n"
             "distinct line: lines (bytes, in the order first met), line_counts and first (the 1-based number of its\n"
             "first line) as int64. stopped: more than 64 MB of such lines were kept and the scan stopped there. error:\n"
             "None, or (line, message) for a syntax error of the array (which ends the scan). With style (and parse),\n"
             "a battle that passes the filters is not counted in pairs but kept in rows (int64, 11 per battle: A and B\n"
             "as indices into names, the outcome code, then conv_metadata's sum_assistant_a_tokens, header_count_a,\n"
             "list_count_a, bold_count_a and the _b four, each a non-negative integer or the sum of an object of them);\n"
             "one whose counts are missing or not counts is kept for the caller to judge. Without style, rows is b''.");

static PyObject *scan_battles(PyObject *self, PyObject *args) {
    PyObject *path = NULL;
    int parse = 1, array = 0, anony_only = 0, dedup = 0, style = 0;
    long long start = 0, stop = -1;
    const char *language = NULL, *category = NULL;
    Py_ssize_t language_n = 0, category_n = 0;
    double since = -INFINITY, until = INFINITY;
    if (!PyArg_ParseTuple(args, "O&p|LLppz#pddz#p", PyUnicode_FSConverter, &path, &parse, &start, &stop, &array,
                          &anony_only, &language, &language_n, &dedup, &since, &until, &category, &category_n,
                          &style))
        return NULL;
    if (start < 0 || (stop >= 0 && stop < start)) {
        Py_DECREF(path);
        return PyErr_Format(PyExc_ValueError, "scan_battles: bad range [%lld, %lld)", start, stop);
    }
    int fd, error = 0;
    Scan scan = {.parse = parse, .array = array};
    Filters *f = &scan.filters;
    f->anony_only = anony_only;
    f->language = language;
    f->language_n = (size_t)language_n;
    f->dedup = dedup;
    f->since = since;
    f->until = until;
    f->window = since > -INFINITY || until < INFINITY;
    f->category = category;
    f->category_n = (size_t)category_n;
    f->active = anony_only || language || dedup || f->window || category;
    f->style = style && parse;
    Py_BEGIN_ALLOW_THREADS;
    fd = open(PyBytes_AS_STRING(path), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        error = errno;
    } else {
        if (lseek(fd, (off_t)start, SEEK_SET) < 0) error = errno;
        else if (array) error = scan_array(fd, &scan);
        else error = scan_file(fd, &scan, stop < 0 ? UINT64_MAX : (uint64_t)(stop - start));
        close(fd);
    }
    Py_END_ALLOW_THREADS;
    PyObject *result = NULL, *names = NULL, *lines = NULL, *pairs = NULL, *counts = NULL;
    if (error == ENOMEM) {
        PyErr_NoMemory();
    } else if (error) {
        errno = error;
        PyErr_SetFromErrnoWithFilename(PyExc_OSError, PyBytes_AS_STRING(path));
    } else if ((names = strings_list(&scan.names)) && (lines = strings_list(&scan.odd)) &&
               (pairs = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(2 * scan.pairs.n * sizeof(int32_t)))) &&
               (counts = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(4 * scan.pairs.n * sizeof(int64_t))))) {
        int32_t *ab = (int32_t *)PyBytes_AS_STRING(pairs);
        int64_t *c = (int64_t *)PyBytes_AS_STRING(counts);
        for (size_t s = 0, k = 0; scan.pairs.slots && s <= scan.pairs.mask; s++) {
            const PairSlot *slot = &scan.pairs.slots[s];
            if (!slot->key) continue;
            ab[2 * k] = (int32_t)((slot->key >> 32) - 1);
            ab[2 * k + 1] = (int32_t)(slot->key & 0xFFFFFFFFu);
            memcpy(c + 4 * k, slot->counts, sizeof slot->counts);
            k++;
        }
        static const int64_t none[1] = {0}; /* y# gives None for a NULL pointer */
        Py_ssize_t bytes = (Py_ssize_t)(scan.odd.n * sizeof(int64_t));
        PyObject *err = scan.error ? Py_BuildValue("(Ls)", (long long)scan.error_line, scan.error) : Py_NewRef(Py_None);
        if (err)
            result = Py_BuildValue("OOOOy#y#LLONy#", names, pairs, counts, lines,
                                   (const char *)(scan.odd.count ? scan.odd.count : none), bytes,
                                   (const char *)(scan.odd.first ? scan.odd.first : none), bytes,
                                   (long long)scan.lines, (long long)scan.filtered,
                                   scan.stopped ? Py_True : Py_False, err,
                                   (const char *)(scan.rows ? scan.rows : none),
                                   (Py_ssize_t)(scan.n_rows * STYLE_ROW * sizeof(int64_t)));
    }
    Py_XDECREF(names);
    Py_XDECREF(lines);
    Py_XDECREF(pairs);
    Py_XDECREF(counts);
    strings_free(&scan.names);
    strings_free(&scan.odd);
    free(scan.pairs.slots);
    free(scan.rows);
    free(scan.scratch);
    Py_DECREF(path);
    return result;
}

/* ------------------------------------------------------------------------------------------ poisson_fill */

PyDoc_STRVAR(poisson_fill_doc,
             "poisson_fill(capsule, cdf, offsets, low, guide, order, out, columns, totals)\n\n"
             "For each cell c (row of out) in the given order and each column r in columns, draw u uniform on\n"
             "[0, 1) (next_double) and set out[c, r] = low[c] + min{x : cdf[offsets[c] + x] > u}, searching from\n"
             "guide[q, floor(u * S)], where q is c's place in the order (S = guide's columns, a power of two). Each\n"
             "CDF row must end at 1.0; the order that follows the rows' offsets reads the tables front to back.\n"
             "totals[r] is set to the sum of column r of out for each r in columns (exact: integers in doubles).");

static PyObject *poisson_fill(PyObject *self, PyObject *args) {
    PyObject *capsule, *objs[8];
    if (!PyArg_ParseTuple(args, "OOOOOOOOO", &capsule, &objs[0], &objs[1], &objs[2], &objs[3], &objs[4], &objs[5],
                          &objs[6], &objs[7]))
        return NULL;
    bitgen_t *bitgen = get_bitgen(capsule);
    if (!bitgen) return NULL;
    Py_buffer cdf, offsets, low, guide, order, out, columns, totals;
    Py_buffer *views[8] = {&cdf, &offsets, &low, &guide, &order, &out, &columns, &totals};
    const Py_ssize_t sizes[8] = {8, 8, 8, 2, 8, 8, 8, 8};
    const char *formats[8] = {"d", "qlL", "qlL", "H", "qlL", "d", "qlL", "d"};
    const char *names[8] = {"cdf", "offsets", "low", "guide", "order", "out", "columns", "totals"};
    int got = 0;
    for (; got < 8; got++) {
        if (get_array(objs[got], views[got], sizes[got], formats[got], got == 5 || got == 7, names[got]) < 0) break;
    }
    PyObject *result = NULL;
    if (got == 8) {
        Py_ssize_t cells = offsets.len / 8, rounds = cells ? out.len / 8 / cells : 0, n_cols = columns.len / 8;
        Py_ssize_t slices = cells ? guide.len / 2 / cells : 0, entries = cdf.len / 8;
        const int64_t *col = columns.buf, *off = offsets.buf, *lo = low.buf, *seq = order.buf;
        const uint16_t *g = guide.buf;
        int ok = low.len / 8 == cells && order.len / 8 == cells && slices > 0 && (slices & (slices - 1)) == 0 &&
                 out.len == cells * rounds * 8 && guide.len == cells * slices * 2 && totals.len == rounds * 8;
        for (Py_ssize_t j = 0; ok && j < n_cols; j++) ok = col[j] >= 0 && col[j] < rounds;
        /* Searches stop at the first entry above u, at the latest at the table's last entry, 1.0. Guide rows
           never decrease, so their last entry bounds them. */
        ok = ok && (!cells || (entries && ((const double *)cdf.buf)[entries - 1] == 1.0));
        for (Py_ssize_t c = 0; ok && c < cells; c++) {
            ok = seq[c] >= 0 && seq[c] < cells && off[seq[c]] >= 0 && off[seq[c]] + g[c * slices + slices - 1] < entries;
        }
        if (!ok && cells) {
            PyErr_SetString(PyExc_ValueError, "poisson_fill: inconsistent shapes");
        } else {
            const double *F = cdf.buf;
            double *o = out.buf, *sum = totals.buf;
            Py_BEGIN_ALLOW_THREADS;
            for (Py_ssize_t j = 0; j < n_cols; j++) sum[col[j]] = 0.0;
            for (Py_ssize_t q = 0; q < cells; q++) {
                const Py_ssize_t c = seq[q];
                const double *row = F + off[c];
                const uint16_t *start = g + q * slices;
                double *dest = o + c * rounds;
                for (Py_ssize_t j = 0; j < n_cols; j++) {
                    double u = bitgen->next_double(bitgen->state);
                    int64_t x = start[(Py_ssize_t)(u * (double)slices)];
                    /* Usually zero to two steps: take two without branching, then any more. */
                    x += row[x] <= u;
                    x += row[x] <= u;
                    while (row[x] <= u) x++;
                    dest[col[j]] = (double)(lo[c] + x);
                    sum[col[j]] += (double)(lo[c] + x);
                }
            }
            Py_END_ALLOW_THREADS;
            result = Py_NewRef(Py_None);
        }
    }
    for (int k = 0; k < got; k++) PyBuffer_Release(views[k]);
    return result;
}

/* ----------------------------------------------------------------------------------------- poisson_tables */

PyDoc_STRVAR(poisson_tables_doc,
             "poisson_tables(first, means, low, width, offsets, order, cdf, guide)\n\n"
             "Fill the tables poisson_fill reads: for each cell c, cdf[offsets[c] + x] for x < width[c] gets the\n"
             "Poisson(means[c]) CDF at low[c] + x, from p(low) = first[c] by p(x) = p(x - 1) * (mean * (1 / x)),\n"
             "summed in order and divided by the sum (the last entry set to exactly 1.0), as\n"
             "scoring.multinomial._cdf_rows does; guide[q, g] = #{x : cdf(x) * S <= g} for c = order[q].");

static PyObject *poisson_tables(PyObject *self, PyObject *args) {
    PyObject *objs[8];
    if (!PyArg_ParseTuple(args, "OOOOOOOO", &objs[0], &objs[1], &objs[2], &objs[3], &objs[4], &objs[5], &objs[6],
                          &objs[7]))
        return NULL;
    Py_buffer first, means, low, width, offsets, order, cdf, guide;
    Py_buffer *views[8] = {&first, &means, &low, &width, &offsets, &order, &cdf, &guide};
    const Py_ssize_t sizes[8] = {8, 8, 8, 8, 8, 8, 8, 2};
    const char *formats[8] = {"d", "d", "qlL", "qlL", "qlL", "qlL", "d", "H"};
    const char *names[8] = {"first", "means", "low", "width", "offsets", "order", "cdf", "guide"};
    int got = 0;
    for (; got < 8; got++) {
        if (get_array(objs[got], views[got], sizes[got], formats[got], got >= 6, names[got]) < 0) break;
    }
    PyObject *result = NULL;
    if (got == 8) {
        Py_ssize_t cells = first.len / 8, entries = cdf.len / 8, slices = cells ? guide.len / 2 / cells : 0;
        const double *p0 = first.buf, *mu = means.buf;
        const int64_t *lo = low.buf, *w = width.buf, *off = offsets.buf, *seq = order.buf;
        int ok = means.len == first.len && low.len == first.len && width.len == first.len &&
                 offsets.len == first.len && order.len == first.len && guide.len == cells * slices * 2;
        for (Py_ssize_t c = 0; ok && c < cells; c++) {
            ok = w[c] > 0 && w[c] <= 65536 && off[c] >= 0 && off[c] + w[c] <= entries && lo[c] >= 0 && seq[c] >= 0 &&
                 seq[c] < cells;
        }
        if (!ok) {
            PyErr_SetString(PyExc_ValueError, "poisson_tables: inconsistent shapes");
        } else {
            double *F = cdf.buf;
            uint16_t *g = guide.buf;
            Py_BEGIN_ALLOW_THREADS;
            for (Py_ssize_t q = 0; q < cells; q++) {
                const Py_ssize_t c = seq[q];
                double *row = F + off[c], p = p0[c], sum = p0[c];
                const int64_t n = w[c];
                row[0] = sum;
                for (int64_t x = 1; x < n; x++) {
                    int64_t k = lo[c] + x;
                    p = p * (mu[c] * (1.0 / (double)(k > 1 ? k : 1)));
                    sum = sum + p;
                    row[x] = sum;
                }
                for (int64_t x = 0; x < n; x++) row[x] = row[x] / sum;
                row[n - 1] = 1.0;
                uint16_t *guide_row = g + q * slices;
                int64_t x = 0;
                for (Py_ssize_t s = 0; s < slices; s++) {
                    while (x < n && row[x] * (double)slices <= (double)s) x++;
                    guide_row[s] = (uint16_t)x;
                }
            }
            Py_END_ALLOW_THREADS;
            result = Py_NewRef(Py_None);
        }
    }
    for (int k = 0; k < got; k++) PyBuffer_Release(views[k]);
    return result;
}

/* ---------------------------------------------------------------------------------------- categorical_add */

PyDoc_STRVAR(categorical_add_doc,
             "categorical_add(capsule, cumulative, draws, out)\n\n"
             "For each column r of out (cells x rounds) in turn, draws[r] times: take k = next_double * 2**53 until\n"
             "k < floor(2**53 / n) * n (n = cumulative[-1]), and add 1 to out[c, r] for the first cell c with\n"
             "cumulative[c] > k %% n.");

static PyObject *categorical_add(PyObject *self, PyObject *args) {
    PyObject *capsule, *objs[3];
    if (!PyArg_ParseTuple(args, "OOOO", &capsule, &objs[0], &objs[1], &objs[2])) return NULL;
    bitgen_t *bitgen = get_bitgen(capsule);
    if (!bitgen) return NULL;
    Py_buffer cumulative, draws, out;
    Py_buffer *views[3] = {&cumulative, &draws, &out};
    const char *formats[3] = {"qlL", "qlL", "d"};
    const char *names[3] = {"cumulative", "draws", "out"};
    int got = 0;
    for (; got < 3; got++) {
        if (get_array(objs[got], views[got], 8, formats[got], got == 2, names[got]) < 0) break;
    }
    PyObject *result = NULL;
    if (got == 3) {
        Py_ssize_t cells = cumulative.len / 8, rounds = draws.len / 8;
        const int64_t *cum = cumulative.buf, *d = draws.buf;
        if (!cells || out.len != cells * rounds * 8 || cum[cells - 1] <= 0 || cum[cells - 1] >= (1LL << 53)) {
            PyErr_SetString(PyExc_ValueError, "categorical_add: inconsistent shapes or counts");
        } else {
            double *o = out.buf;
            const uint64_t n = (uint64_t)cum[cells - 1], limit = ((1ULL << 53) / n) * n;
            /* guide[g]: the first cell with cumulative > g << shift, where the search for v starts (g = v >> shift,
               at most about 2 * cells buckets). */
            int shift = 0;
            while (((n - 1) >> shift) >= (uint64_t)(2 * cells)) shift++;
            const uint64_t buckets = ((n - 1) >> shift) + 1;
            Py_ssize_t *guide = malloc(buckets * sizeof *guide);
            if (!guide) {
                PyErr_NoMemory();
                goto release;
            }
            Py_BEGIN_ALLOW_THREADS;
            for (uint64_t g = 0, c = 0; g < buckets; g++) {
                while ((uint64_t)cum[c] <= g << shift) c++;
                guide[g] = (Py_ssize_t)c;
            }
            for (Py_ssize_t r = 0; r < rounds; r++) {
                for (int64_t k = 0; k < d[r]; k++) {
                    uint64_t v;
                    do {
                        v = (uint64_t)(bitgen->next_double(bitgen->state) * 9007199254740992.0);
                    } while (v >= limit);
                    v %= n;
                    Py_ssize_t c = guide[v >> shift];
                    while ((uint64_t)cum[c] <= v) c++;
                    o[c * rounds + r] += 1.0;
                }
            }
            Py_END_ALLOW_THREADS;
            free(guide);
            result = Py_NewRef(Py_None);
        }
    }
release:
    for (int k = 0; k < got; k++) PyBuffer_Release(views[k]);
    return result;
}

/* ------------------------------------------------------------------------------------------- half_chord */

PyDoc_STRVAR(half_chord_doc,
             "half_chord(draws, pair_i, pair_j, had, x0, inv_hess, prior, tol, max_steps, scale, work, theta, error,\n"
             "           lost)\n\n"
             "Chord-Newton refits of half-tie Bradley-Terry: draws is (3, pairs, rounds) (first model's wins,\n"
             "second's, ties), theta (models, rounds) receives the log-strengths and error (rounds) the estimated\n"
             "distance left to each round's solution in rating points (scale per unit of theta). Steps go on until\n"
             "every round's error is below tol, or max_steps; return the number of steps. lost (uint8, rounds) is\n"
             "set where, without a prior, a pair whose first (had[0, p]) or second (had[1, p]) model won or tied\n"
             "in the data has that model neither winning nor tying in the round. work is scratch space of at least\n"
             "(pairs + 5 * models + 2) * rounds doubles.");

/* The arithmetic of half_chord (see its documentation); the loops over rounds are the inner ones, so they vectorise.
   Return the number of steps. */
static int chord_steps(
    const double *D, const int64_t *I, const int64_t *J, const uint8_t *had_first, const uint8_t *had_second,
    const double *start, const double *H, double prior, double tol, int max_steps, double scale, Py_ssize_t m,
    Py_ssize_t pairs, Py_ssize_t rounds, double *work, double *T, double *E, uint8_t *L) {
    double *battles = work, *score = battles + pairs * rounds, *strength = score + m * rounds;
    double *over = strength + m * rounds, *grad = over + m * rounds, *step = grad + m * rounds;
    double *last = step + m * rounds, *size = last + rounds;
    int steps = 0;
    const double *wins_i = D, *wins_j = D + pairs * rounds, *ties = D + 2 * pairs * rounds;
    memset(score, 0, (size_t)(m * rounds) * sizeof(double));
    memset(L, 0, (size_t)rounds);
    for (Py_ssize_t p = 0; p < pairs; p++) {
        const double *restrict a = wins_i + p * rounds, *restrict b = wins_j + p * rounds, *restrict t = ties + p * rounds;
        double *restrict n = battles + p * rounds, *restrict si = score + I[p] * rounds, *restrict sj = score + J[p] * rounds;
        for (Py_ssize_t r = 0; r < rounds; r++) {
            n[r] = a[r] + b[r] + t[r];
            si[r] += a[r] + 0.5 * t[r];
            sj[r] += b[r] + 0.5 * t[r];
        }
        if (prior == 0.0 && (had_first[p] || had_second[p])) {
            /* Only a fit without the prior can lose its maximum-likelihood estimate. */
            for (Py_ssize_t r = 0; r < rounds; r++) {
                L[r] |= (had_first[p] && a[r] + t[r] == 0.0) | (had_second[p] && b[r] + t[r] == 0.0);
            }
        }
    }
    for (Py_ssize_t i = 0; i < m; i++)
        for (Py_ssize_t r = 0; r < rounds; r++) T[i * rounds + r] = start[i];
    for (Py_ssize_t r = 0; r < rounds; r++) last[r] = E[r] = INFINITY;
    while (steps < max_steps) {
        steps++;
        for (Py_ssize_t k = 0; k < m * rounds; k++) strength[k] = exp(T[k]);
        memset(over, 0, (size_t)(m * rounds) * sizeof(double));
        for (Py_ssize_t p = 0; p < pairs; p++) {
            const double *restrict n = battles + p * rounds, *restrict ei = strength + I[p] * rounds,
                                   *restrict ej = strength + J[p] * rounds;
            double *restrict oi = over + I[p] * rounds, *restrict oj = over + J[p] * rounds;
            for (Py_ssize_t r = 0; r < rounds; r++) {
                double w = n[r] / (ei[r] + ej[r]);
                oi[r] += w;
                oj[r] += w;
            }
        }
        for (Py_ssize_t k = 0; k < m * rounds; k++) {
            grad[k] = score[k] - strength[k] * over[k];
            if (prior != 0.0) grad[k] += prior * (0.5 - 1.0 / (1.0 + exp(-T[k])));
        }
        memset(step, 0, (size_t)(m * rounds) * sizeof(double));
        for (Py_ssize_t i = 0; i < m; i++) {
            double *restrict s = step + i * rounds;
            for (Py_ssize_t k = 0; k < m; k++) {
                const double h = H[i * m + k], *restrict g = grad + k * rounds;
                for (Py_ssize_t r = 0; r < rounds; r++) s[r] += h * g[r];
            }
        }
        for (Py_ssize_t r = 0; r < rounds; r++) size[r] = 0.0;
        for (Py_ssize_t i = 0; i < m; i++) {
            double *restrict t = T + i * rounds;
            const double *restrict s = step + i * rounds;
            for (Py_ssize_t r = 0; r < rounds; r++) {
                t[r] += s[r];
                double a = fabs(s[r]);
                if (a > size[r] || isnan(a)) size[r] = a; /* a NaN stays: that round failed */
            }
        }
        double worst = 0.0;
        int failed = 0;
        for (Py_ssize_t r = 0; r < rounds; r++) {
            /* Chord steps shrink geometrically; once a step is under half the one before, the distance left is
               below size * ratio / (1 - ratio). */
            double s = size[r] * scale, ratio = s / last[r];
            E[r] = s == 0.0 ? 0.0 : (isfinite(last[r]) && ratio < 0.5 ? s * ratio / (1.0 - ratio) : INFINITY);
            last[r] = s;
            worst = fmax(worst, E[r]);
            failed |= isnan(E[r]);
        }
        if (!failed && worst < tol) break;
    }
    return steps;
}

static PyObject *half_chord(PyObject *self, PyObject *args) {
    PyObject *objs[6], *out_objs[4];
    double prior, tol, scale;
    int max_steps;
    if (!PyArg_ParseTuple(args, "OOOOOOddidOOOO", &objs[0], &objs[1], &objs[2], &objs[3], &objs[4], &objs[5],
                          &prior, &tol, &max_steps, &scale, &out_objs[0], &out_objs[1], &out_objs[2], &out_objs[3]))
        return NULL;
    Py_buffer draws, pi, pj, had, x0, hess, work, theta, error, lost;
    Py_buffer *views[10] = {&draws, &pi, &pj, &had, &x0, &hess, &work, &theta, &error, &lost};
    PyObject *all[10] = {objs[0], objs[1], objs[2], objs[3], objs[4], objs[5],
                         out_objs[0], out_objs[1], out_objs[2], out_objs[3]};
    const Py_ssize_t sizes[10] = {8, 8, 8, 1, 8, 8, 8, 8, 8, 1};
    const char *formats[10] = {"d", "qlL", "qlL", "B?", "d", "d", "d", "d", "d", "B?"};
    const char *names[10] = {"draws", "pair_i", "pair_j", "had", "x0", "inv_hess", "work", "theta", "error", "lost"};
    int got = 0;
    for (; got < 10; got++) {
        if (get_array(all[got], views[got], sizes[got], formats[got], got >= 6, names[got]) < 0) break;
    }
    PyObject *result = NULL;
    if (got < 10) goto done;
    Py_ssize_t m = x0.len / 8, pairs = pi.len / 8, rounds = error.len / 8;
    const int64_t *I = pi.buf, *J = pj.buf;
    int ok = pj.len == pi.len && had.len == 2 * pairs && draws.len == 3 * pairs * rounds * 8 &&
             hess.len == m * m * 8 && theta.len == m * rounds * 8 && lost.len == rounds &&
             work.len >= (pairs + 5 * m + 2) * rounds * 8;
    for (Py_ssize_t p = 0; ok && p < pairs; p++) ok = I[p] >= 0 && I[p] < m && J[p] >= 0 && J[p] < m && I[p] != J[p];
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "half_chord: inconsistent shapes");
        goto done;
    }
    const double *D = draws.buf, *H = hess.buf, *start = x0.buf;
    const uint8_t *had_first = had.buf, *had_second = had_first + pairs;
    double *T = theta.buf, *E = error.buf;
    uint8_t *L = lost.buf;
    int steps = 0;
    Py_BEGIN_ALLOW_THREADS;
    steps = chord_steps(D, I, J, had_first, had_second, start, H, prior, tol, max_steps, scale, m, pairs, rounds, work.buf,
                        T, E, L);
    Py_END_ALLOW_THREADS;
    result = PyLong_FromLong(steps);
done:
    for (int k = 0; k < got; k++) PyBuffer_Release(views[k]);
    return result;
}

/* ------------------------------------------------------------------------------------------- style_terms */

PyDoc_STRVAR(style_terms_doc,
             "style_terms(features, y, weights, starts, pair_a, pair_b, params, reg, probs, grad, hess)\n\n"
             "The gradient and Hessian of style control's penalised negative log-likelihood (scoring.style._terms)\n"
             "in one pass over the rows: features (rows, k) row-major, y and weights (rows), rows sorted by pair,\n"
             "pair p holding rows starts[p] .. starts[p + 1] - 1 (the last to the end) between models pair_a[p] <\n"
             "pair_b[p]; params (m + k) = (theta, beta). Each row's logit is ln(10) (theta_a - theta_b) + x . beta\n"
             "and p its expit, or p = probs[row] where probs (rows) is given instead of None. grad (m + k) and hess\n"
             "((m + k) x (m + k)) are overwritten: reg * params - sum w (y - p) dlogit, and the weighted Laplacian\n"
             "of w p (1 - p) over the pairs with its models x features and features x features blocks, plus reg on\n"
             "the diagonal. Rows of weight 0 are skipped.");

#define STYLE_MAX_FEATURES 8

/* 1 / (1 + exp(-z)) to a few units in the last place, without branches or calls so that loops of it vectorise:
   exp(t) = 2^n exp(r) with n = round(t / ln 2), r = t - n ln 2 (|r| <= 0.347, ln 2 in two parts) and exp(r) by its
   Taylor polynomial to degree 12 (truncation below 1e-16 relative). Only for |z| <= 700 (2^n must stay a normal
   number): callers compute the rest with exp (a clamp here would stop the loops vectorising). The numpy twin uses
   scipy.special.expit; the two agree to about 1e-15. */
#define STYLE_BLOCK 64
static inline double fast_expit(double z) {
    const double t = -z;
    const double shifter = 6755399441055744.0; /* 1.5 * 2^52: adding it rounds to an integer in the low bits */
    const double nd = t * 1.4426950408889634074 + shifter;
    const double n = nd - shifter;
    const double r = (t - n * 6.93147180369123816490e-01) - n * 1.90821492927058770002e-10;
    double poly = 1.0 / 479001600.0;
    poly = poly * r + 1.0 / 39916800.0;
    poly = poly * r + 1.0 / 3628800.0;
    poly = poly * r + 1.0 / 362880.0;
    poly = poly * r + 1.0 / 40320.0;
    poly = poly * r + 1.0 / 5040.0;
    poly = poly * r + 1.0 / 720.0;
    poly = poly * r + 1.0 / 120.0;
    poly = poly * r + 1.0 / 24.0;
    poly = poly * r + 1.0 / 6.0;
    poly = poly * r + 0.5;
    poly = poly * r + 1.0;
    poly = poly * r + 1.0;
    uint64_t bits;
    memcpy(&bits, &nd, 8);
    bits = (bits - 0x4338000000000000ULL + 1023) << 52; /* 2^n: n + 1023 in the exponent field */
    double scale;
    memcpy(&scale, &bits, 8);
    return 1.0 / (1.0 + poly * scale);
}

/* The arithmetic of style_terms (see its documentation); inlined so that the usual k = 4 unrolls. */
static inline __attribute__((always_inline)) void style_pass(const double *X, const double *Y, const double *W, const int64_t *S, const int64_t *A,
                       const int64_t *B, const double *params, double reg, const double *probs, Py_ssize_t rows,
                       Py_ssize_t pairs, Py_ssize_t m, Py_ssize_t k, double *grad, double *hess) {
    const double alpha = 2.302585092994045684; /* ln(10) */
    const Py_ssize_t d = m + k;
    const double *beta = params + m;
    double fg[STYLE_MAX_FEATURES] = {0}, fh[STYLE_MAX_FEATURES * STYLE_MAX_FEATURES] = {0};
    memset(hess, 0, (size_t)(d * d) * sizeof(double));
    for (Py_ssize_t i = 0; i < d; i++) grad[i] = reg * params[i];
    for (Py_ssize_t p = 0; p < pairs; p++) {
        const Py_ssize_t a = A[p], b = B[p], end = p + 1 < pairs ? S[p + 1] : rows;
        const double base = alpha * (params[a] - params[b]);
        double g0 = 0.0, h0 = 0.0, hx[STYLE_MAX_FEATURES] = {0}, logit[STYLE_BLOCK], prob[STYLE_BLOCK];
        for (Py_ssize_t r = S[p]; r < end; r++) {
            const Py_ssize_t at = (r - S[p]) % STYLE_BLOCK;
            if (!probs && at == 0) { /* the next block's probabilities, in loops without branches (they vectorise) */
                const Py_ssize_t n = end - r < STYLE_BLOCK ? end - r : STYLE_BLOCK;
                for (Py_ssize_t i = 0; i < n; i++) {
                    double eta = base;
                    for (Py_ssize_t j = 0; j < k; j++) eta += beta[j] * X[(r + i) * k + j];
                    logit[i] = eta;
                }
                for (Py_ssize_t i = 0; i < n; i++) prob[i] = fast_expit(logit[i]);
            }
            const double w = W[r];
            if (w == 0.0) continue;
            const double *x = X + r * k;
            const double q = probs ? probs[r] : fabs(logit[at]) <= 700.0 ? prob[at] : 1.0 / (1.0 + exp(-logit[at]));
            const double e = w * (Y[r] - q), v = w * (q * (1.0 - q));
            g0 += e;
            h0 += v;
            for (Py_ssize_t j = 0; j < k; j++) {
                const double vx = v * x[j];
                hx[j] += vx;
                fg[j] += e * x[j];
                for (Py_ssize_t i = 0; i <= j; i++) fh[i * k + j] += vx * x[i];
            }
        }
        grad[a] -= alpha * g0;
        grad[b] += alpha * g0;
        const double vp = alpha * alpha * h0;
        hess[a * d + b] -= vp;
        hess[b * d + a] -= vp;
        hess[a * d + a] += vp;
        hess[b * d + b] += vp;
        for (Py_ssize_t j = 0; j < k; j++) {
            hess[a * d + m + j] += alpha * hx[j];
            hess[b * d + m + j] -= alpha * hx[j];
        }
    }
    for (Py_ssize_t j = 0; j < k; j++) {
        grad[m + j] -= fg[j];
        for (Py_ssize_t i = 0; i < m; i++) hess[(m + j) * d + i] = hess[i * d + m + j];
        for (Py_ssize_t i = 0; i <= j; i++) hess[(m + i) * d + m + j] = hess[(m + j) * d + m + i] = fh[i * k + j];
    }
    for (Py_ssize_t i = 0; i < d; i++) hess[i * d + i] += reg;
}

static PyObject *style_terms(PyObject *self, PyObject *args) {
    PyObject *objs[7], *probs_obj, *out_objs[2];
    double reg;
    if (!PyArg_ParseTuple(args, "OOOOOOOdOOO", &objs[0], &objs[1], &objs[2], &objs[3], &objs[4], &objs[5],
                          &objs[6], &reg, &probs_obj, &out_objs[0], &out_objs[1]))
        return NULL;
    Py_buffer features, y, weights, starts, pa, pb, params, probs, grad, hess;
    Py_buffer *views[10] = {&features, &y, &weights, &starts, &pa, &pb, &params, &grad, &hess, &probs};
    PyObject *all[10] = {objs[0], objs[1], objs[2], objs[3], objs[4], objs[5], objs[6],
                         out_objs[0], out_objs[1], probs_obj};
    const char *formats[10] = {"d", "d", "d", "qlL", "qlL", "qlL", "d", "d", "d", "d"};
    const char *names[10] = {"features", "y", "weights", "starts", "pair_a", "pair_b", "params", "grad", "hess",
                             "probs"};
    int n_views = probs_obj == Py_None ? 9 : 10, got = 0;
    for (; got < n_views; got++) {
        if (get_array(all[got], views[got], 8, formats[got], got == 7 || got == 8, names[got]) < 0) break;
    }
    PyObject *result = NULL;
    if (got < n_views) goto done;
    Py_ssize_t rows = y.len / 8, pairs = starts.len / 8, d = grad.len / 8;
    Py_ssize_t k = rows ? features.len / 8 / rows : 0, m = d - k;
    const int64_t *S = starts.buf, *A = pa.buf, *B = pb.buf;
    int ok = weights.len == y.len && features.len == rows * k * 8 && pa.len == starts.len && pb.len == starts.len &&
             params.len == grad.len && hess.len == d * d * 8 && k >= 0 && k <= STYLE_MAX_FEATURES && m >= 0 &&
             (n_views == 9 || probs.len == y.len) && (rows == 0 || (pairs > 0 && S[0] == 0));
    for (Py_ssize_t p = 0; ok && p < pairs; p++) {
        Py_ssize_t end = p + 1 < pairs ? S[p + 1] : rows;
        ok = A[p] >= 0 && A[p] < m && B[p] >= 0 && B[p] < m && A[p] != B[p] && S[p] >= 0 && S[p] <= end && end <= rows;
    }
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "style_terms: inconsistent shapes");
        goto done;
    }
    const double *P = n_views == 10 ? probs.buf : NULL;
    Py_BEGIN_ALLOW_THREADS;
    if (k == 4)
        style_pass(features.buf, y.buf, weights.buf, S, A, B, params.buf, reg, P, rows, pairs, m, 4, grad.buf, hess.buf);
    else
        style_pass(features.buf, y.buf, weights.buf, S, A, B, params.buf, reg, P, rows, pairs, m, k, grad.buf, hess.buf);
    Py_END_ALLOW_THREADS;
    result = Py_NewRef(Py_None);
done:
    for (int i = 0; i < got; i++) PyBuffer_Release(views[i]);
    return result;
}

PyDoc_STRVAR(spd_solve_doc,
             "spd_solve(matrix, rhs, out) -> bool\n\n"
             "Solve matrix @ out = rhs for a symmetric positive definite matrix (n x n, float64; its upper triangle\n"
             "is read) by Cholesky factorisation in scratch space; return False, leaving out unspecified, where a\n"
             "pivot is not positive (the caller solves otherwise). The numpy twin is numpy.linalg.solve.");

static PyObject *spd_solve(PyObject *self, PyObject *args) {
    PyObject *objs[3];
    if (!PyArg_ParseTuple(args, "OOO", &objs[0], &objs[1], &objs[2])) return NULL;
    Py_buffer matrix, rhs, out;
    Py_buffer *views[3] = {&matrix, &rhs, &out};
    const char *names[3] = {"matrix", "rhs", "out"};
    int got = 0;
    for (; got < 3; got++) {
        if (get_array(objs[got], views[got], 8, "d", got == 2, names[got]) < 0) break;
    }
    PyObject *result = NULL;
    if (got < 3) goto done;
    Py_ssize_t n = rhs.len / 8;
    if (matrix.len != n * n * 8 || out.len != rhs.len) {
        PyErr_SetString(PyExc_ValueError, "spd_solve: inconsistent shapes");
        goto done;
    }
    double *L = malloc((size_t)(n * n + 1) * sizeof(double));
    if (!L) {
        PyErr_NoMemory();
        goto done;
    }
    const double *M = matrix.buf, *b = rhs.buf;
    double *x = out.buf;
    int ok = 1;
    Py_BEGIN_ALLOW_THREADS;
    /* L is stored by rows, lower triangle: L[i, j] for j <= i. */
    for (Py_ssize_t i = 0; ok && i < n; i++) {
        double *Li = L + i * n;
        for (Py_ssize_t j = 0; j <= i; j++) {
            const double *Lj = L + j * n;
            double s = M[j * n + i];
            for (Py_ssize_t q = 0; q < j; q++) s -= Li[q] * Lj[q];
            if (j < i) {
                Li[j] = s / Lj[j];
            } else if (s > 0.0 && isfinite(s)) {
                Li[i] = sqrt(s);
            } else {
                ok = 0;
            }
        }
    }
    if (ok) {
        for (Py_ssize_t i = 0; i < n; i++) { /* L y = b */
            double s = b[i];
            for (Py_ssize_t q = 0; q < i; q++) s -= L[i * n + q] * x[q];
            x[i] = s / L[i * n + i];
        }
        for (Py_ssize_t i = n - 1; i >= 0; i--) { /* L^T x = y */
            double s = x[i];
            for (Py_ssize_t q = i + 1; q < n; q++) s -= L[q * n + i] * x[q];
            x[i] = s / L[i * n + i];
        }
    }
    Py_END_ALLOW_THREADS;
    free(L);
    result = PyBool_FromLong(ok);
done:
    for (int k = 0; k < got; k++) PyBuffer_Release(views[k]);
    return result;
}

PyDoc_STRVAR(poisson_classes_doc,
             "poisson_classes(capsule, cdf, offsets, low, guide, classes, out, rows, totals)\n\n"
             "For each row r of out (rounds x cells) in rows, in turn, and each cell c in order: draw u uniform on\n"
             "[0, 1) (next_double) and set out[r, c] = low[t] + min{x : cdf[offsets[t] + x] > u}, t = classes[c],\n"
             "searching from guide[t, floor(u * S)] (S = guide's columns, a power of two): Poisson counts whose\n"
             "cells share the tables of their class (scoring.style_draws). Each class's CDF must end at 1.0.\n"
             "totals[r] is set to the sum of row r.");

static PyObject *poisson_classes(PyObject *self, PyObject *args) {
    PyObject *capsule, *objs[8];
    if (!PyArg_ParseTuple(args, "OOOOOOOOO", &capsule, &objs[0], &objs[1], &objs[2], &objs[3], &objs[4], &objs[5],
                          &objs[6], &objs[7]))
        return NULL;
    bitgen_t *bitgen = get_bitgen(capsule);
    if (!bitgen) return NULL;
    Py_buffer cdf, offsets, low, guide, classes, out, rows, totals;
    Py_buffer *views[8] = {&cdf, &offsets, &low, &guide, &classes, &out, &rows, &totals};
    const Py_ssize_t sizes[8] = {8, 8, 8, 2, 8, 8, 8, 8};
    const char *formats[8] = {"d", "qlL", "qlL", "H", "qlL", "d", "qlL", "d"};
    const char *names[8] = {"cdf", "offsets", "low", "guide", "classes", "out", "rows", "totals"};
    int got = 0;
    for (; got < 8; got++) {
        if (get_array(objs[got], views[got], sizes[got], formats[got], got == 5 || got == 7, names[got]) < 0) break;
    }
    PyObject *result = NULL;
    if (got < 8) goto done;
    Py_ssize_t n_classes = offsets.len / 8, cells = classes.len / 8, entries = cdf.len / 8;
    Py_ssize_t rounds = totals.len / 8, n_rows = rows.len / 8;
    Py_ssize_t slices = n_classes ? guide.len / 2 / n_classes : 0;
    const int64_t *off = offsets.buf, *lo = low.buf, *cls = classes.buf, *R = rows.buf;
    const uint16_t *g = guide.buf;
    const double *F = cdf.buf;
    int ok = low.len == offsets.len && slices > 0 && (slices & (slices - 1)) == 0 &&
             guide.len == n_classes * slices * 2 && out.len == rounds * cells * 8;
    for (Py_ssize_t j = 0; ok && j < n_rows; j++) ok = R[j] >= 0 && R[j] < rounds;
    /* Every search stops at the class's last entry, 1.0, at the latest: the guide's last entry bounds it. */
    for (Py_ssize_t t = 0; ok && t < n_classes; t++) {
        Py_ssize_t last = off[t] + g[t * slices + slices - 1];
        ok = off[t] >= 0 && lo[t] >= 0 && last < entries;
        for (Py_ssize_t x = last; ok && F[x] != 1.0; x++) ok = x + 1 < entries;
    }
    for (Py_ssize_t c = 0; ok && c < cells; c++) ok = cls[c] >= 0 && cls[c] < n_classes;
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "poisson_classes: inconsistent shapes");
        goto done;
    }
    double *o = out.buf, *sum = totals.buf;
    Py_BEGIN_ALLOW_THREADS;
    for (Py_ssize_t j = 0; j < n_rows; j++) {
        double *dest = o + R[j] * cells, total = 0.0;
        for (Py_ssize_t c = 0; c < cells; c++) {
            const Py_ssize_t t = cls[c];
            const double *row = F + off[t];
            double u = bitgen->next_double(bitgen->state);
            int64_t x = g[t * slices + (Py_ssize_t)(u * (double)slices)];
            while (row[x] <= u) x++;
            dest[c] = (double)(lo[t] + x);
            total += dest[c];
        }
        sum[R[j]] = total;
    }
    Py_END_ALLOW_THREADS;
    result = Py_NewRef(Py_None);
done:
    for (int k = 0; k < got; k++) PyBuffer_Release(views[k]);
    return result;
}

/* ------------------------------------------------------------------------------------------------ module */

static PyMethodDef methods[] = {
    {"scan_battles", scan_battles, METH_VARARGS, scan_battles_doc},
    {"poisson_tables", poisson_tables, METH_VARARGS, poisson_tables_doc},
    {"poisson_fill", poisson_fill, METH_VARARGS, poisson_fill_doc},
    {"categorical_add", categorical_add, METH_VARARGS, categorical_add_doc},
    {"half_chord", half_chord, METH_VARARGS, half_chord_doc},
    {"style_terms", style_terms, METH_VARARGS, style_terms_doc},
    {"spd_solve", spd_solve, METH_VARARGS, spd_solve_doc},
    {"poisson_classes", poisson_classes, METH_VARARGS, poisson_classes_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "scoring._kernels",
    .m_doc = "Compiled kernels of scoring.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }
