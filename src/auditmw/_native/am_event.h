/* The request event of Pipeline._build, built in one call (am_event.c). */
#ifndef AM_EVENT_H
#define AM_EVENT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* The other entry points of _core that the builder calls (no Python round trip). */
typedef struct {
    /* headers_pick(raw, raw_names): a new list, Py_None (not covered) or NULL (error) */
    PyObject *(*pick)(PyObject *raw, PyObject *raw_names);
    /* format_time(ns): a new str, or NULL with an exception set */
    PyObject *(*format_time)(PyObject *ns);
} am_event_hooks;

/* The layout of the ctx tuple built once by Pipeline.__init__ (see builder.py). */
enum {
    AM_CTX_EXCHANGE,     /* the Exchange class */
    AM_CTX_HEADERS,      /* the Headers class */
    AM_CTX_CONTEXT,      /* the RequestContext class */
    AM_CTX_ACTOR,        /* the Actor class */
    AM_CTX_AUTH,         /* the AuthInfo class */
    AM_CTX_DECISION,     /* the Decision class */
    AM_CTX_PICKED,       /* Pipeline._picked: tuple of 6 str */
    AM_CTX_PICKED_RAW,   /* Pipeline._picked_raw: tuple of 6 bytes */
    AM_CTX_STAMPS,       /* Pipeline._stamps: {rule: stamp} */
    AM_CTX_ROUTES,       /* Pipeline._routes: {(route, operation, rule): (type, id, action)} */
    AM_CTX_LIMITS,       /* (limits.path, limits.header, limits.user_agent, limits.query) */
    AM_CTX_PROXIES,      /* bool: trusted proxies are configured */
    AM_CTX_RECORD,       /* Pipeline.record_headers: tuple */
    AM_CTX_SECRETS,      /* SECRET_PARAMS: frozenset of lower-case names */
    AM_CTX_SIZE
};

/* Interns the attribute names and keys; 0, or -1 with an exception set. */
int am_event_init(void);

/* build_http_event(exchange, decision, actor, service, ctx): the dict Pipeline._build
 * returns, None where the request needs what only the Python code does, or NULL with an
 * exception set (allocation failure, malformed ctx). */
PyObject *am_build_http_event(PyObject *const *args, Py_ssize_t nargs,
                              const am_event_hooks *hooks);

#endif
