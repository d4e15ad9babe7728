/* workload.c: a CoreMark-like, self-checking CPU workload (see README.md and workload.h).
 *
 * Each iteration runs four kernels on inputs derived from its index:
 *   list    build a linked list on a static pool, look keys up, reverse it, merge-sort it by key, then by
 *           insertion order again                    (pointer chasing, unpredictable branches)
 *   matrix  multiply two 16x16 integer matrices      (multiplies, array indexing)
 *   parse   print a line of numbers and words, then scan it back with a state machine that classifies
 *           and converts the tokens (decimal, hex, fixed-point, invalid)   (switch-heavy byte code)
 *   crc     CRC-32, one bit at a time, over the results of the other three (shifts and masks)
 * Each kernel also checks itself (the list really is sorted, the parse gives back what was printed, the
 * matrix sum equals the sum computed another way), and the iterations' checksums are chained with
 * CRC-32 into one value compared with a table of known values.
 *
 * Integers only, 32-bit arithmetic done unsigned wherever it may wrap, no libc: the same result on a
 * bare i386 kernel, a 32-bit Linux program and an lguest guest. */
#include "workload.h"

/* ---- self-checks ----------------------------------------------------------------------------- */

static void check(struct workload_result *r, int ok)
{
    if (ok)
        r->checks_passed++;
    else
        r->checks_failed++;
}

/* ---- inputs: a small pseudo-random generator seeded from the iteration index --------------------- */

static uint32_t seed_for(uint32_t index)
{
    uint32_t x = index * 0x9E3779B9u + 0x7F4A7C15u;
    x ^= x >> 15;
    x *= 0x2C1B3C6Du;
    x ^= x >> 12;
    return x;
}

static uint32_t rng_next(uint32_t *state)
{
    *state = *state * 1664525u + 1013904223u;   /* the Numerical Recipes LCG, with its high bits */
    return *state ^ (*state >> 16);              /* folded into the low ones */
}

/* ---- CRC-32 (IEEE 802.3 polynomial, reflected), one bit at a time ---------------------------------- */

#define CRC32_POLY 0xEDB88320u
#define CRC32_INIT 0xFFFFFFFFu

static uint32_t crc32_byte(uint32_t crc, uint32_t byte)
{
    crc ^= byte & 0xFF;
    for (int bit = 0; bit < 8; bit++)
        crc = (crc >> 1) ^ (CRC32_POLY & (0u - (crc & 1)));
    return crc;
}

static uint32_t crc32_u32(uint32_t crc, uint32_t v)   /* little-endian, whatever the host */
{
    crc = crc32_byte(crc, v);
    crc = crc32_byte(crc, v >> 8);
    crc = crc32_byte(crc, v >> 16);
    return crc32_byte(crc, v >> 24);
}

static uint32_t crc32_bytes(uint32_t crc, const char *p, uint32_t n)
{
    while (n--)
        crc = crc32_byte(crc, (uint8_t)*p++);
    return crc;
}

/* ---- list: a singly linked list on a static pool ----------------------------------------------------- */

#define LIST_NODES   128
#define LIST_KEY_MASK 0xFFF     /* keys repeat: the sort must be stable */
#define LIST_LOOKUPS 32

struct list_node {
    struct list_node *next;
    uint32_t key;
    uint32_t value;             /* insertion order: 0 .. LIST_NODES-1 */
};

static struct list_node list_pool[LIST_NODES];

enum list_order { BY_KEY, BY_VALUE };

static struct list_node *list_build(uint32_t *rng)
{
    struct list_node *head = 0;
    for (uint32_t i = 0; i < LIST_NODES; i++) {
        struct list_node *n = &list_pool[i];
        n->key = rng_next(rng) & LIST_KEY_MASK;
        n->value = i;
        n->next = head;         /* insert at the head: the list runs LIST_NODES-1 .. 0 */
        head = n;
    }
    return head;
}

static struct list_node *list_find(struct list_node *head, uint32_t key, uint32_t *steps)
{
    for (; head; head = head->next) {
        (*steps)++;
        if (head->key == key)
            return head;
    }
    return 0;
}

static struct list_node *list_reverse(struct list_node *head)
{
    struct list_node *done = 0;
    while (head) {
        struct list_node *next = head->next;
        head->next = done;
        done = head;
        head = next;
    }
    return done;
}

static int list_before(const struct list_node *a, const struct list_node *b, enum list_order order)
{
    return order == BY_KEY ? a->key <= b->key : a->value <= b->value;
}

static struct list_node *list_merge(struct list_node *a, struct list_node *b, enum list_order order)
{
    struct list_node first, *tail = &first;
    while (a && b) {
        if (list_before(a, b, order)) {
            tail->next = a;
            a = a->next;
        } else {
            tail->next = b;
            b = b->next;
        }
        tail = tail->next;
    }
    tail->next = a ? a : b;
    return first.next;
}

/* Stable merge sort: split at the middle (slow and fast pointers), sort both halves, merge. */
static struct list_node *list_sort(struct list_node *head, enum list_order order)
{
    struct list_node *slow, *fast, *second;
    if (!head || !head->next)
        return head;
    slow = head;
    fast = head->next;
    while (fast && fast->next) {
        slow = slow->next;
        fast = fast->next->next;
    }
    second = slow->next;
    slow->next = 0;
    return list_merge(list_sort(head, order), list_sort(second, order), order);
}

static uint32_t list_kernel(uint32_t *rng, struct workload_result *r)
{
    uint32_t crc = CRC32_INIT, steps = 0, count, sorted, weighted;
    struct list_node *head = list_build(rng), *n;

    for (uint32_t i = 0; i < LIST_LOOKUPS; i++) {
        /* even lookups: a key that is there; odd: any key, usually absent */
        uint32_t pick = rng_next(rng);
        uint32_t key = (i & 1) ? pick & LIST_KEY_MASK : list_pool[pick % LIST_NODES].key;
        n = list_find(head, key, &steps);
        crc = crc32_u32(crc, n ? n->value : 0xFFFFFFFFu);
        if (!(i & 1))
            check(r, n && n->key == key);
    }
    crc = crc32_u32(crc, steps);

    head = list_reverse(head);
    check(r, head->value == 0);

    head = list_sort(head, BY_KEY);
    count = 0;
    sorted = 1;
    weighted = 0;
    for (n = head; n; n = n->next) {
        if (n->next && (n->key > n->next->key ||
                        (n->key == n->next->key && n->value > n->next->value)))   /* stable */
            sorted = 0;
        weighted += (n->key ^ n->value) * (count + 1);
        count++;
    }
    check(r, sorted && count == LIST_NODES);
    crc = crc32_u32(crc, weighted);
    crc = crc32_u32(crc, head->key);

    head = list_sort(head, BY_VALUE);       /* back to insertion order */
    count = 0;
    for (n = head; n; n = n->next, count++)
        if (n->value != count)
            break;
    check(r, !n && count == LIST_NODES);
    return crc;
}

/* ---- matrix: C = A * B, 16x16 signed integers ----------------------------------------------------- */

#define MAT_N 16

static int32_t mat_a[MAT_N][MAT_N], mat_b[MAT_N][MAT_N], mat_c[MAT_N][MAT_N];

static uint32_t matrix_kernel(uint32_t *rng, struct workload_result *r)
{
    uint32_t crc = CRC32_INIT, sum_c = 0, sum_check = 0, fold = 0;

    for (int i = 0; i < MAT_N; i++)
        for (int j = 0; j < MAT_N; j++) {
            uint32_t x = rng_next(rng);
            mat_a[i][j] = (int32_t)(x & 0xFF) - 128;
            mat_b[i][j] = (int32_t)((x >> 8) & 0xFF) - 128;
        }

    for (int i = 0; i < MAT_N; i++)
        for (int j = 0; j < MAT_N; j++) {
            int32_t acc = 0;
            for (int k = 0; k < MAT_N; k++)
                acc += mat_a[i][k] * mat_b[k][j];
            mat_c[i][j] = acc;
        }

    /* Fold every element into a rotating hash, and the row sums into the CRC. */
    for (int i = 0; i < MAT_N; i++) {
        uint32_t row = 0;
        for (int j = 0; j < MAT_N; j++) {
            row += (uint32_t)mat_c[i][j];
            fold = ((fold << 5) | (fold >> 27)) ^ (uint32_t)mat_c[i][j];
        }
        sum_c += row;
        crc = crc32_u32(crc, row);
    }

    /* The sum of all of C is the sum over k of (column k of A summed) * (row k of B summed). */
    for (int k = 0; k < MAT_N; k++) {
        uint32_t col_a = 0, row_b = 0;
        for (int i = 0; i < MAT_N; i++) {
            col_a += (uint32_t)mat_a[i][k];
            row_b += (uint32_t)mat_b[k][i];
        }
        sum_check += col_a * row_b;
    }
    check(r, sum_c == sum_check);
    return crc32_u32(crc32_u32(crc, sum_c), fold);
}

/* ---- parse: print a line of tokens, scan it back with a state machine ------------------------------ */

#define PARSE_TOKENS 48
#define PARSE_TEXT   (PARSE_TOKENS * 12 + 1)   /* the longest token is 9 bytes, separators 2 */

enum token_class { TOKEN_DECIMAL, TOKEN_HEX, TOKEN_FIXED, TOKEN_INVALID, TOKEN_CLASSES };

/* Scanner states. */
enum scan_state {
    SCAN_SPACE,       /* between tokens */
    SCAN_SIGN,        /* after '-' */
    SCAN_ZERO,        /* a leading 0: decimal 0, or the start of 0x */
    SCAN_DIGITS,      /* decimal digits */
    SCAN_HEX_PREFIX,  /* after 0x */
    SCAN_HEX,         /* hex digits */
    SCAN_POINT,       /* after the '.' of a fixed-point number */
    SCAN_FRACTION,    /* its digits */
    SCAN_INVALID,     /* anything else, up to the next separator */
};

struct parse_totals {
    uint32_t count[TOKEN_CLASSES];
    uint32_t sum[TOKEN_CLASSES];      /* fixed-point values in hundredths; invalid: their lengths */
};

static char parse_text[PARSE_TEXT];

static char *put_unsigned(char *p, uint32_t v, uint32_t base)
{
    char digits[12];
    int n = 0;
    do {
        digits[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (n)
        *p++ = digits[--n];
    return p;
}

/* Writes PARSE_TOKENS random tokens into parse_text and adds what they are to *made. */
static uint32_t parse_generate(uint32_t *rng, struct parse_totals *made)
{
    char *p = parse_text;
    for (int t = 0; t < PARSE_TOKENS; t++) {
        uint32_t x = rng_next(rng);
        uint32_t kind = x % 5, v = (x >> 8) & 0xFFFF, negative = (x >> 24) & 1;
        char *start = p;

        switch (kind) {
        case 0:                                    /* decimal, maybe negative */
            if (negative)
                *p++ = '-';
            p = put_unsigned(p, v, 10);
            made->count[TOKEN_DECIMAL]++;
            made->sum[TOKEN_DECIMAL] += negative ? 0u - v : v;
            break;
        case 1:                                    /* hex */
            *p++ = '0';
            *p++ = 'x';
            p = put_unsigned(p, v, 16);
            made->count[TOKEN_HEX]++;
            made->sum[TOKEN_HEX] += v;
            break;
        case 2: {                                  /* fixed point, two decimals, maybe negative */
            uint32_t whole = v / 100, hundredths = v % 100;
            if (negative)
                *p++ = '-';
            p = put_unsigned(p, whole, 10);
            *p++ = '.';
            *p++ = (char)('0' + hundredths / 10);
            *p++ = (char)('0' + hundredths % 10);
            made->count[TOKEN_FIXED]++;
            made->sum[TOKEN_FIXED] += negative ? 0u - v : v;
            break;
        }
        case 3:                                    /* a word */
            for (uint32_t n = 1 + v % 6; n; n--, v /= 7)
                *p++ = (char)('g' + v % 20);
            made->count[TOKEN_INVALID]++;
            made->sum[TOKEN_INVALID] += (uint32_t)(p - start);
            break;
        default:                                   /* a number gone wrong: digits, a letter, digits */
            p = put_unsigned(p, v % 1000, 10);
            *p++ = (char)('g' + v % 20);
            p = put_unsigned(p, v / 1000, 10);
            made->count[TOKEN_INVALID]++;
            made->sum[TOKEN_INVALID] += (uint32_t)(p - start);
            break;
        }
        if (x & (1u << 28))
            *p++ = ',';
        *p++ = ' ';
    }
    *p = '\0';
    return (uint32_t)(p - parse_text);
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Scans parse_text back, adding what it finds to *seen; returns a CRC of the tokens and states. */
static uint32_t parse_scan(struct parse_totals *seen)
{
    enum scan_state state = SCAN_SPACE;
    uint32_t crc = CRC32_INIT, value = 0, negative = 0, fraction_digits = 0, length = 0;

    for (const char *p = parse_text;; p++) {
        char c = *p;
        int separator = c == ' ' || c == ',' || c == '\0';

        if (separator) {
            if (state != SCAN_SPACE) {              /* a token ends: classify it */
                enum token_class cls;
                uint32_t v = value;
                switch (state) {
                case SCAN_ZERO:
                case SCAN_DIGITS:
                    cls = TOKEN_DECIMAL;
                    break;
                case SCAN_HEX:
                    cls = TOKEN_HEX;
                    break;
                case SCAN_FRACTION:
                    cls = fraction_digits == 2 ? TOKEN_FIXED : TOKEN_INVALID;
                    break;
                default:
                    cls = TOKEN_INVALID;
                    break;
                }
                if (cls == TOKEN_INVALID)
                    v = length;
                else if (negative)
                    v = 0u - v;
                seen->count[cls]++;
                seen->sum[cls] += v;
                crc = crc32_u32(crc, v);
                crc = crc32_byte(crc, cls);
                state = SCAN_SPACE;
            }
            if (c == '\0')
                break;
            continue;
        }

        length++;
        switch (state) {
        case SCAN_SPACE:
            value = negative = fraction_digits = 0;
            length = 1;
            if (c == '-')
                state = SCAN_SIGN;
            else if (c == '0')
                state = SCAN_ZERO;
            else if (c >= '1' && c <= '9') {
                value = (uint32_t)(c - '0');
                state = SCAN_DIGITS;
            } else
                state = SCAN_INVALID;
            if (c == '-')
                negative = 1;
            break;
        case SCAN_SIGN:
            if (c >= '0' && c <= '9') {
                value = (uint32_t)(c - '0');
                state = SCAN_DIGITS;
            } else
                state = SCAN_INVALID;
            break;
        case SCAN_ZERO:
            if (c == 'x' || c == 'X')
                state = SCAN_HEX_PREFIX;
            else if (c == '.')
                state = SCAN_POINT;
            else if (c >= '0' && c <= '9') {
                value = (uint32_t)(c - '0');
                state = SCAN_DIGITS;
            } else
                state = SCAN_INVALID;
            break;
        case SCAN_DIGITS:
            if (c >= '0' && c <= '9')
                value = value * 10 + (uint32_t)(c - '0');
            else if (c == '.')
                state = SCAN_POINT;
            else
                state = SCAN_INVALID;
            break;
        case SCAN_HEX_PREFIX:
        case SCAN_HEX:
            if (hex_digit(c) >= 0) {
                value = (value << 4) | (uint32_t)hex_digit(c);
                state = SCAN_HEX;
            } else
                state = SCAN_INVALID;
            break;
        case SCAN_POINT:
        case SCAN_FRACTION:
            if (c >= '0' && c <= '9') {
                value = value * 10 + (uint32_t)(c - '0');
                fraction_digits++;
                state = SCAN_FRACTION;
            } else
                state = SCAN_INVALID;
            break;
        case SCAN_INVALID:
            break;
        }
    }
    return crc;
}

static uint32_t parse_kernel(uint32_t *rng, struct workload_result *r)
{
    struct parse_totals made = { { 0 }, { 0 } }, seen = { { 0 }, { 0 } };
    uint32_t length = parse_generate(rng, &made);
    uint32_t crc = parse_scan(&seen);
    int same = 1;

    for (int c = 0; c < TOKEN_CLASSES; c++)
        if (made.count[c] != seen.count[c] || made.sum[c] != seen.sum[c])
            same = 0;
    check(r, same);
    return crc32_bytes(crc, parse_text, length);
}

/* ---- the iteration and the run ------------------------------------------------------------------ */

uint32_t workload_iteration(uint32_t index, struct workload_result *r)
{
    uint32_t rng = seed_for(index);
    uint32_t crc = crc32_u32(CRC32_INIT, index);
    crc = crc32_u32(crc, list_kernel(&rng, r));
    crc = crc32_u32(crc, matrix_kernel(&rng, r));
    crc = crc32_u32(crc, parse_kernel(&rng, r));
    return ~crc;
}

void workload_run(uint32_t iterations, struct workload_result *r)
{
    uint32_t chain = CRC32_INIT;
    r->iterations = iterations;
    r->checks_passed = r->checks_failed = 0;
    for (uint32_t i = 0; i < iterations; i++)
        chain = crc32_u32(chain, workload_iteration(i, r));
    r->checksum = ~chain;
}

/* ---- reference checksums and the report --------------------------------------------------------- */

/* Measured with the native build (bench/workload/native) and QEMU (bench.elf); they must agree. */
static const struct {
    uint32_t iterations, checksum;
} references[] = {
    { 0, 0x00000000u },
    { 1, 0xaec86bf3u },
    { 2, 0x129e15c8u },
    { 10, 0x061e6e72u },
    { 100, 0xa21a5048u },
    { 1000, 0x23e839b7u },
    { 10000, 0xedb5d135u },
    { 100000, 0x80429336u },
    { 1000000, 0x79567947u },
};

int workload_reference(uint32_t iterations, uint32_t *checksum)
{
    for (uint32_t i = 0; i < sizeof references / sizeof references[0]; i++)
        if (references[i].iterations == iterations) {
            *checksum = references[i].checksum;
            return 1;
        }
    return 0;
}

static void print_u32(uint32_t v)
{
    char buf[12];
    *put_unsigned(buf, v, 10) = '\0';
    workload_print(buf);
}

static void print_hex32(uint32_t v)
{
    char buf[11];
    buf[0] = '0';
    buf[1] = 'x';
    for (int i = 0; i < 8; i++)
        buf[2 + i] = "0123456789abcdef"[(v >> (28 - 4 * i)) & 0xF];
    buf[10] = '\0';
    workload_print(buf);
}

int workload_report(const struct workload_result *r)
{
    uint32_t expected = 0;
    int known = workload_reference(r->iterations, &expected);
    int pass = r->checks_failed == 0 && (!known || expected == r->checksum);

    workload_print("workload: iterations ");
    print_u32(r->iterations);
    workload_print("\nworkload: checksum ");
    print_hex32(r->checksum);
    if (known) {
        workload_print(expected == r->checksum ? " (matches the reference)" : " (expected ");
        if (expected != r->checksum) {
            print_hex32(expected);
            workload_print(")");
        }
    } else {
        workload_print(" (no reference for this count: self-checks only)");
    }
    workload_print("\nworkload: self-checks ");
    print_u32(r->checks_passed);
    workload_print(" passed, ");
    print_u32(r->checks_failed);
    workload_print(" failed\n");
    workload_print(pass ? "PASS\n" : "FAIL\n");
    return pass ? 0 : 1;
}
