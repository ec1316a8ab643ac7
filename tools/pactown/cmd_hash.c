/* pactown hash — the canonical requirement set and its cache key. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "pactown/fsutil.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: pactown hash [-r FILE | REQUIREMENT...] [--json] [options]\n"
            "\n"
            "Prints the canonical text of a requirement set (what the cache key covers:\n"
            "interpreter, installer sources, normalized requirements) and its key, so you\n"
            "can see why two sets share a venv or not. Requirements come from -r FILE\n"
            "(requirements.txt syntax; '-' for standard input) or from the arguments.\n"
            "\n"
            "  -r, --requirements FILE   read requirements from FILE\n"
            "  --json                    print {\"key\": …, \"canonical\": …}\n"
            "  --register                also record the set in the index, so that a lookup of\n"
            "                            <mount>/by-deps/<key> builds it\n"
            "\n" CLI_COMMON_HELP);
}

int cmd_hash(int argc, char **argv)
{
    struct cli cli = { .prog = "pactown hash" };
    static const struct option opts[] = {
        { "requirements", required_argument, NULL, 'r' }, { "json", no_argument, NULL, OPT_JSON },
        { "register", no_argument, NULL, 'R' },
        CLI_COMMON_LONGOPTS, { 0 } };
    const char *file = NULL;
    bool json = false, reg = false;
    int c, ret;
    while ((c = getopt_long(argc, argv, "r:h", opts, NULL)) != -1) {
        if (c == 'r')
            file = optarg;
        else if (c == OPT_JSON)
            json = true;
        else if (c == 'R')
            reg = true;
        else if ((ret = cli_common_opt(&cli, c, optarg)) != 0) {
            usage(ret == 1 ? stdout : stderr);
            cli_free(&cli);
            return ret == 1 ? EXIT_OK : EXIT_USAGE;
        }
    }
    if ((file && optind < argc) || (!file && optind == argc)) {
        cli_err(&cli, "give either -r FILE or requirements as arguments");
        usage(stderr);
        cli_free(&cli);
        return EXIT_USAGE;
    }
    if ((ret = cli_setup(&cli)) != 0)
        goto out;
    pt_reqset set;
    pt_reqset_init(&set);
    if ((ret = cli_read_reqs(&cli, file, argv + optind, argc - optind, &set)) != 0)
        goto out_set;
    /* the index only caches the interpreter probe here: do without it if it cannot be opened */
    char dir[4096];
    if (reg) {
        if ((ret = cli_open_index(&cli)) != 0)
            goto out_set;
    } else if (pt_config_cache_path(&cli.cfg, "index", NULL, dir, sizeof dir) == 0) {
        pt_index_open(dir, &cli.idx, NULL);
    }
    char key[PT_KEY_HEX + 1], *canonical = NULL;
    size_t len;
    if ((ret = cli_key_of(&cli, &set, key, &canonical, &len)) != 0)
        goto out_set;
    if (reg) {
        int rc = pt_index_register(cli.idx, key, canonical, len, NULL);
        if (rc) {
            cli_err(&cli, "cannot register %s: %s", key, strerror(-rc));
            ret = EXIT_ERROR;
            free(canonical);
            goto out_set;
        }
    }
    if (json) {
        json_t *o = json_pack("{s:s, s:s#}", "key", key, "canonical", canonical, len);
        char *s = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        if (s)
            printf("%s\n", s);
        free(s);
        json_decref(o);
    } else {
        fputs(canonical, stdout);
        printf("key %s\n", key);
    }
    free(canonical);
out_set:
    pt_reqset_free(&set);
out:
    cli_free(&cli);
    return ret;
}
