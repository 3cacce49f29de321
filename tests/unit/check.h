/* check.h — the smallest test harness that reports well: CHECK keeps going
 * after a failure and names the file:line and expression; main returns the
 * failure count so ctest sees it. */
#ifndef SW_CHECK_H
#define SW_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failures, check_count;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        check_count++;                                                               \
        if (!(cond)) {                                                               \
            check_failures++;                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                      \
    do {                                                                                        \
        long long a_ = (long long)(a), b_ = (long long)(b);                                     \
        check_count++;                                                                          \
        if (a_ != b_) {                                                                         \
            check_failures++;                                                                   \
            fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, #a, #b, a_, b_); \
        }                                                                                       \
    } while (0)

#define CHECK_CONTAINS(hay, needle)                                                              \
    do {                                                                                         \
        check_count++;                                                                           \
        if (!strstr((hay), (needle))) {                                                          \
            check_failures++;                                                                    \
            fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__, (hay), (needle)); \
        }                                                                                        \
    } while (0)

#define CHECK_DONE()                                                                  \
    do {                                                                              \
        fprintf(stderr, "%d checks, %d failed\n", check_count, check_failures);       \
        return check_failures ? 1 : 0;                                                \
    } while (0)

#endif
