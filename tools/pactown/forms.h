/* forms.h — README forms beyond the plain blocks (internal to tools/pactown). */
#ifndef PACTOWN_FORMS_H
#define PACTOWN_FORMS_H

#include "cli.h"
#include "pactown/markpact.h"
#include "pactown/req.h"

/* Read the README at path with its includes (pactown/readme.h) into *mp,
 * say its warnings, infer a missing run command (python main.py, python
 * app.py), and fill *set with its deps (uvicorn/gunicorn added when the run
 * command uses them), finished. Prints the error; returns 0, EXIT_BAD_INPUT
 * or EXIT_ERROR. */
int cli_readme_load(struct cli *cli, const char *path, pt_markpact *mp, pt_reqset *set);

/* The same for README text posted to the API (len bytes, not retained),
 * named name in messages ("NAME:LINE: reason"); an include is refused (the
 * text has no directory). Returns 0, EXIT_BAD_INPUT or EXIT_ERROR. */
int cli_readme_text(struct cli *cli, const char *name, const char *text, size_t len, pt_markpact *mp,
                    pt_reqset *set);

/* Fill the template=true file blocks of mp in place from envs[0..n_envs)
 * (--env, last wins) and the environment; a plain ${NAME} also from
 * <README's directory>/.markpact/secrets.env (markpact's secrets file);
 * for the API (cli->api) only from envs, never the server's environment. Returns 0, EXIT_BAD_INPUT (an
 * ${ask:...} without a default: named with file and line) or EXIT_ERROR. */
int cli_fill_templates(struct cli *cli, const char *readme, pt_markpact *mp, char *const *envs, int n_envs);

/* A .env.example file block's variables that neither --env nor the
 * environment sets: listed in one error. Returns 0 or EXIT_BAD_INPUT. */
int cli_check_env_example(struct cli *cli, const char *readme, const pt_markpact *mp, char *const *envs, int n_envs);

/* Write <sandbox>/.env (mode 0600: --env values may be secrets): the
 * README's own .env block, then PORT, MARKPACT_PORT and the --env values.
 * Returns 0 or EXIT_ERROR (said). */
int cli_write_dotenv(struct cli *cli, int dirfd, const pt_markpact *mp, int port, char *const *envs, int n_envs);

/* Run the markpact:build command once per sandbox (again when it changes),
 * /bin/sh -c in the sandbox with env, output to stderr. Returns 0 or
 * EXIT_BUILD (said). */
int cli_build_step(struct cli *cli, const pt_markpact *mp, int dirfd, const char *sandbox, char *const *env);

#endif
