/* test_warm_probe.c — what pactown believes of a warm process's prober
 * (pactown/warm.h pt_warm_probe): a status in 100..599 or one of three
 * errors; any other answer, a closed connection or none in time make the
 * prober unusable (-EPIPE), so that the health wait probes with libcurl.
 * The prober here is a thread on the other end of a socketpair that reads
 * the request, checks its fields and answers as it is told. The real
 * prober is tried by tests/integration/warm.sh. */
#include "testutil.h"

#include <jansson.h>
#include <pthread.h>
#include <sys/socket.h>

#include "pactown/warm.h"

struct peer {
    int fd;
    const char *reply; /* NULL: close without answering; "": do not answer */
    char request[512];
};

static void *peer_main(void *arg)
{
    struct peer *p = arg;
    ssize_t n = recv(p->fd, p->request, sizeof p->request - 1, 0);
    p->request[n > 0 ? n : 0] = '\0';
    if (p->reply && *p->reply)
        send(p->fd, p->reply, strlen(p->reply), MSG_NOSIGNAL);
    if (p->reply && !*p->reply)
        usleep(1500 * 1000); /* longer than the request's time and the prober's 1 s */
    close(p->fd);
    return NULL;
}

/* pt_warm_probe against a peer answering reply; its return, *status in st */
static int probe_with(const char *reply, long *st, char *request, size_t rn)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    struct peer p = { .fd = sv[1], .reply = reply };
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, peer_main, &p), 0);
    int rc = pt_warm_probe(sv[0], "127.0.0.1", 8080, "/health", 100, st);
    pthread_join(t, NULL);
    close(sv[0]);
    if (request)
        snprintf(request, rn, "%s", p.request);
    return rc;
}

Test(warm_probe, the_request_and_the_answers_believed)
{
    long st = -1;
    char rq[512];
    cr_assert_eq(probe_with("{\"status\": 200}", &st, rq, sizeof rq), 0);
    cr_assert_eq(st, 200);
    json_t *j = json_loads(rq, 0, NULL);
    cr_assert_not_null(j, "request: %s", rq);
    cr_assert_str_eq(json_string_value(json_object_get(j, "host")), "127.0.0.1");
    cr_assert_eq(json_integer_value(json_object_get(j, "port")), 8080);
    cr_assert_str_eq(json_string_value(json_object_get(j, "path")), "/health");
    cr_assert_eq(json_integer_value(json_object_get(j, "timeout_ms")), 100);
    json_decref(j);
    cr_assert_eq(probe_with("{\"status\": 404}", &st, NULL, 0), 0);
    cr_assert_eq(st, 404);
    cr_assert_eq(probe_with("{\"error\": \"ECONNREFUSED\"}", &st, NULL, 0), -ECONNREFUSED);
    cr_assert_eq(probe_with("{\"error\": \"ETIMEDOUT\"}", &st, NULL, 0), -ETIMEDOUT);
    cr_assert_eq(probe_with("{\"error\": \"EIO\"}", &st, NULL, 0), -EIO);
    cr_assert_eq(st, 0, "no status with an error");
}

Test(warm_probe, any_other_answer_makes_the_prober_unusable)
{
    static const char *const lies[] = { "{\"status\": 99}", "{\"status\": 600}", "{\"status\": \"200\"}",
                                        "{\"status\": 200.5}", "{\"error\": \"ENOENT\"}", "{}", "[200]",
                                        "not json", "{\"status\": -1}" };
    for (size_t i = 0; i < sizeof lies / sizeof lies[0]; i++) {
        long st = -1;
        cr_assert_eq(probe_with(lies[i], &st, NULL, 0), -EPIPE, "answer %s", lies[i]);
        cr_assert_eq(st, 0, "answer %s gave status %ld", lies[i], st);
    }
    long st;
    cr_assert_eq(probe_with(NULL, &st, NULL, 0), -EPIPE, "closed without an answer");
    cr_assert_eq(probe_with("", &st, NULL, 0), -EPIPE, "no answer within the request's time and 1 s");
}

Test(warm_probe, bad_arguments)
{
    long st;
    cr_assert_eq(pt_warm_probe(-1, "127.0.0.1", 80, "/", 100, &st), -EINVAL);
    cr_assert_eq(pt_warm_probe(0, "127.0.0.1", 80, "health", 100, &st), -EINVAL);
    cr_assert_eq(pt_warm_probe(0, "127.0.0.1", 0, "/", 100, &st), -EINVAL);
    cr_assert_eq(pt_warm_probe(0, "127.0.0.1", 80, "/", 0, &st), -EINVAL);
    /* a path that is not ASCII (health.c takes its bytes as they are): libcurl's to send */
    cr_assert_eq(pt_warm_probe(0, "127.0.0.1", 80, "/caf\xc3\xa9", 100, &st), -EPIPE);
    cr_assert_eq(pt_warm_probe(0, "127.0.0.1", 80, "/\xff", 100, &st), -EPIPE);
}
