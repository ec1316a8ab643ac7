/* main.c — pactown-serve, the runner API (api.h): the program that `pactown
 * serve` execs, with its arguments as they were ("pactown serve [options]").
 * It holds everything that needs libmicrohttpd, which no other command of
 * pactown loads. Run by hand, `pactown-serve [options]` is the same. */
#include <string.h>

#include "../cli.h"

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "serve") == 0)
        return cmd_serve(argc - 1, argv + 1);
    return cmd_serve(argc, argv);
}
