/* pactown/scripts.h — the scripts in a venv's bin/ must run whatever the
 * store path's length.
 *
 * When a shebang line would pass 127 bytes, uv and pip (distlib) write a
 * /bin/sh launcher instead:
 *     #!/bin/sh
 *     '''exec' '/long/path/bin/python' "$0" "$@"
 *     ' '''
 * after which a script's docstring is no longer its first statement, so a
 * `from __future__ import ...` below it is a SyntaxError (uv#6489,
 * pip#1773). Linux reads shebang lines up to BINPRM_BUF_SIZE (256 bytes,
 * binfmt_script since 5.1): such a launcher is turned back into a plain
 * "#!<interpreter>" line whenever that fits.
 */
#ifndef PACTOWN_SCRIPTS_H
#define PACTOWN_SCRIPTS_H

/* The longest interpreter path a plain shebang line carries on Linux:
 * BINPRM_BUF_SIZE (256) less "#!" and the newline. */
#define PT_SHEBANG_PATH_MAX 253

/* The longest interpreter path an installer writes into a venv's scripts,
 * beyond the venv directory: "/bin/python3.NNN". */
#define PT_VENV_PYTHON_SUFFIX_MAX 16

/* Rewrite every /bin/sh launcher (above) among the regular files of
 * <venv>/bin into a plain shebang line, keeping the file's mode; the
 * replacement is renamed over the script. A launcher whose interpreter path
 * holds whitespace or is longer than PT_SHEBANG_PATH_MAX is left as it is.
 * Symlinks are never followed. Returns the number rewritten, or -errno. */
int pt_venv_fix_launchers(const char *venv);

#endif
