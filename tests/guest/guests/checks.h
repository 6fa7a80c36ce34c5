/*
 * The checks of this package's guest programs: CHECK counts a condition and prints "FAIL line N: ..." when it does
 * not hold; EXPECT compares two values as u32. A program ends with `return checks_done("name");`, which prints
 * "name: N checks, M failures" and returns the exit status (1 on any failure).
 */
#ifndef TESTS_GUEST_CHECKS_H
#define TESTS_GUEST_CHECKS_H
#include "guest.h"

static int failures;
static int checks;

#define CHECK(cond, ...)                        \
	do {                                        \
		checks++;                               \
		if (!(cond)) {                          \
			failures++;                         \
			printf("FAIL line %d: ", __LINE__); \
			printf(__VA_ARGS__);                \
			printf("\n");                       \
		}                                       \
	} while (0)

#define EXPECT(got, want, what) CHECK((got) == (want), "%s: got %x want %x", what, (u32)(got), (u32)(want))

static inline int checks_done(const char *name) {
	printf("%s: %d checks, %d failures\n", name, checks, failures);
	return failures ? 1 : 0;
}

#endif
