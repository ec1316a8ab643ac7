/* statbench — time path lookups and directory listings in nanoseconds, for
 * tools/bench (figures 4 and 6). One clock_gettime pair per call; prints one
 * figure per line so that the harness computes medians and spreads.
 *
 *   statbench each stat|lstat FILE     one call per path listed in FILE (each
 *                                      path once: first lookups)
 *   statbench repeat stat|lstat PATH N N calls on the same path (cached lookups)
 *   statbench readdir DIR N            N full listings (opendir, readdir to the
 *                                      end, closedir); prints "ns entries"
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int do_stat(int follow, const char *p)
{
    struct stat st;
    return follow ? stat(p, &st) : lstat(p, &st);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: statbench each stat|lstat FILE | repeat stat|lstat PATH N | readdir DIR N\n");
        return 2;
    }
    if (!strcmp(argv[1], "each")) {
        int follow = !strcmp(argv[2], "stat");
        FILE *f = fopen(argv[3], "r");
        if (!f) { perror(argv[3]); return 1; }
        char line[4096];
        while (fgets(line, sizeof line, f)) {
            line[strcspn(line, "\n")] = '\0';
            long long t0 = now_ns();
            int rc = do_stat(follow, line);
            long long t1 = now_ns();
            if (rc != 0) { perror(line); return 1; }
            printf("%lld\n", t1 - t0);
        }
        fclose(f);
        return 0;
    }
    if (!strcmp(argv[1], "repeat") && argc > 4) {
        int follow = !strcmp(argv[2], "stat");
        long n = strtol(argv[4], NULL, 10);
        if (do_stat(follow, argv[3]) != 0) { perror(argv[3]); return 1; } /* warm */
        for (long i = 0; i < n; i++) {
            long long t0 = now_ns();
            int rc = do_stat(follow, argv[3]);
            long long t1 = now_ns();
            if (rc != 0) { perror(argv[3]); return 1; }
            printf("%lld\n", t1 - t0);
        }
        return 0;
    }
    if (!strcmp(argv[1], "readdir")) {
        long n = strtol(argv[3], NULL, 10);
        for (long i = 0; i < n; i++) {
            long long t0 = now_ns();
            DIR *d = opendir(argv[2]);
            if (!d) { perror(argv[2]); return 1; }
            long count = 0;
            while (readdir(d))
                count++;
            closedir(d);
            printf("%lld %ld\n", now_ns() - t0, count);
        }
        return 0;
    }
    fprintf(stderr, "statbench: unknown mode %s\n", argv[1]);
    return 2;
}
