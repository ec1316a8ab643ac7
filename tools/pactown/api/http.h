/* http.h — libmicrohttpd's callbacks of the API (internal to tools/pactown/api). */
#ifndef PACTOWN_API_HTTP_H
#define PACTOWN_API_HTTP_H

#include <microhttpd.h>

/* MHD_AccessHandlerCallback: cls is the struct api. Gathers the body (at
 * most api_max_body bytes: 413 above it), checks the token (all routes but
 * /health), strips a /runner prefix and answers the route. */
enum MHD_Result api_handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                           const char *version, const char *upload, size_t *upload_size, void **con_cls);

/* MHD_UnescapeCallback: libmicrohttpd's unescaping, with %00 as DEL (0x7f)
 * so that no NUL hides the rest of an id, path or parameter. */
size_t api_unescape(void *cls, struct MHD_Connection *conn, char *s);

/* MHD_RequestCompletedCallback: frees what api_handle kept. */
void api_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe);

#endif
