/* The request event of Pipeline._build (pipeline/builder.py), built in one C call.
 *
 * The Python method is the specification: the dict returned here has the same keys, in
 * the same order, with equal values of the same types, and shares with the caches what
 * the Python code shares (service, the policy stamp, route-param strings).  Whatever the
 * Python code would clean, escape or decide (non-ASCII text, bodies, queries with a '%' or
 * something to redact, annotations,
 * recorded headers, trusted proxies with forwarding headers, websockets, exceptions, a
 * route or stamp not cached yet, unusual types anywhere) makes this return None: the
 * Python code runs instead (tests/native/test_event_build.py compares both).
 *
 * Every object read from the exchange is an owned reference (PyObject_GetAttr); objects
 * read from dicts are owned as soon as they are read, because an allocation may run the
 * garbage collector and so any finalizer. */
#include "am_event.h"

#include <stdint.h>
#include <string.h>
#include <structmember.h>

#define AM_NAMES(X)                                                                            \
    X(headers) X(_raw) X(_map) X(_bytes) X(pick) X(kind) X(method) X(path) X(query) X(scheme) \
    X(http_version) X(client) X(route) X(path_params) X(status) X(start_ns) X(end_ns)          \
    X(start_mono) X(end_mono) X(request_bytes) X(response_bytes) X(exception) X(aborted)        \
    X(context) X(request_body) X(response_body) X(extra) X(trace) X(event_id) X(annotations)   \
    X(resource_type) X(resource_id) X(action) X(_event) X(_changed) X(roles) X(scopes) X(auth) \
    X(error) X(rule) X(schema_version) X(time) X(end_time) X(duration_us) X(operation)         \
    X(outcome) X(severity) X(actor) X(source) X(request) X(response) X(resource) X(service)    \
    X(policy) X(outcome_reason) X(truncated) X(ip) X(port) X(user_agent) X(forwarded_for)      \
    X(id) X(protocol) X(bytes) X(root_path) X(host) X(status_code) X(type) X(route_params)     \
    X(trace_id) X(span_id) X(http) X(unknown) X(success) X(denied) X(failure) X(info)          \
    X(medium) X(low) X(high) X(aborted_outcome) X(client_disconnected) X(no_response)          \
    X(authz_denied) X(authn_invalid_token) X(authn_required) X(read) X(create) X(update)       \
    X(delete) X(other)

#define AM_DECLARE(name) static PyObject *S_##name;
AM_NAMES(AM_DECLARE)
#undef AM_DECLARE
static PyObject *S_schema, *S_empty, *S_ptr_agent, *S_ptr_forwarded, *S_ptr_path, *S_ptr_host,
    *S_root_key, *S_http_prefix, *S_ptr_query, *I_500;

int am_event_init(void) {
    if (S_headers != NULL) return 0; /* process-global, like MacKey_Type */
#define AM_INTERN(name)                                                                      \
    if ((S_##name = PyUnicode_InternFromString(#name)) == NULL) return -1;
    AM_NAMES(AM_INTERN)
#undef AM_INTERN
    Py_SETREF(S_aborted_outcome, PyUnicode_InternFromString("aborted"));
    if (S_aborted_outcome == NULL) return -1;
    S_schema = PyUnicode_InternFromString("1.0");
    S_empty = PyUnicode_InternFromString("");
    S_ptr_agent = PyUnicode_InternFromString("/source/user_agent");
    S_ptr_forwarded = PyUnicode_InternFromString("/source/forwarded_for");
    S_ptr_path = PyUnicode_InternFromString("/request/path");
    S_ptr_host = PyUnicode_InternFromString("/request/host");
    S_root_key = PyUnicode_InternFromString("auditmw.root_path");
    S_http_prefix = PyUnicode_InternFromString("HTTP/");
    S_ptr_query = PyUnicode_InternFromString("/request/query");
    I_500 = PyLong_FromLong(500);
    if (S_schema == NULL || S_empty == NULL || S_ptr_agent == NULL || S_ptr_forwarded == NULL ||
        S_ptr_path == NULL || S_ptr_host == NULL || S_root_key == NULL ||
        S_http_prefix == NULL || S_ptr_query == NULL || I_500 == NULL)
        return -1;
    return 0;
}

/* The exchange's fields, read once (owned references). */
#define AM_FIELDS(X)                                                                          \
    X(kind) X(method) X(path) X(query) X(scheme) X(http_version) X(client) X(route)             \
    X(path_params) X(status) X(start_ns) X(end_ns) X(start_mono) X(end_mono) X(request_bytes)  \
    X(response_bytes) X(exception) X(aborted) X(context) X(request_body) X(response_body)      \
    X(extra) X(trace) X(event_id)
#define AM_ENUM(name) F_##name,
enum { AM_FIELDS(AM_ENUM) F_COUNT };
#undef AM_ENUM

typedef struct {
    PyObject *f[F_COUNT];
    PyObject *picked;     /* list of 6: request id, host, traceparent, xff, forwarded, agent */
    PyObject *route_info; /* (type, id param, action) from the route cache */
    PyObject *stamp;      /* the rule's policy stamp */
    PyObject *truncated;  /* list of JSON Pointers, made on first use */
} am_state;

/* The result of a step: 1 done, 0 not covered (the Python code runs), -1 error. */
#define AM_TRY(expr)                                                                         \
    do {                                                                                     \
        int am_r_ = (expr);                                                                  \
        if (am_r_ <= 0) return am_r_;                                                        \
    } while (0)

/* Where the __slots__ member `name` of a class lives in its instances: a cache of
 * (class, name) -> offset, valid while the class's version tag is (any change to the
 * class, such as assigning a property over the slot, invalidates the tag), like CPython's
 * own attribute cache.  The names are the interned strings above (never freed). */
typedef struct {
    PyTypeObject *type;
    PyObject *name;
    unsigned int version;
    Py_ssize_t offset;
} am_slot;

static am_slot slot_cache[256];

static int tag_valid(PyTypeObject *type) {
    return (type->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG) != 0 && type->tp_version_tag != 0;
}

/* A new reference to obj.name, or NULL (not covered: the Python code raises what it
 * raises).  A slot read straight from the instance where the class and name are cached;
 * the generic lookup otherwise (the classes checked by the caller are __slots__ classes,
 * so no Python code runs either way). */
static PyObject *get(PyObject *obj, PyObject *name) {
    PyTypeObject *type = Py_TYPE(obj);
    am_slot *e = &slot_cache[(((uintptr_t)type >> 4) ^ ((uintptr_t)name >> 4)) & 255];
    PyObject *value;
    if (e->type == type && e->name == name && tag_valid(type) &&
        e->version == type->tp_version_tag) {
        value = *(PyObject **)((char *)obj + e->offset);
        if (value != NULL) return Py_NewRef(value);
    } else if (type->tp_getattro == PyObject_GenericGetAttr) {
        PyObject *descr = _PyType_Lookup(type, name); /* borrowed; tags the class */
        if (descr != NULL && Py_IS_TYPE(descr, &PyMemberDescr_Type) &&
            ((PyMemberDescrObject *)descr)->d_member->type == T_OBJECT_EX && tag_valid(type)) {
            e->type = type;
            e->name = name;
            e->version = type->tp_version_tag;
            e->offset = ((PyMemberDescrObject *)descr)->d_member->offset;
            value = *(PyObject **)((char *)obj + e->offset);
            if (value != NULL) return Py_NewRef(value);
        }
    }
    value = PyObject_GetAttr(obj, name);
    if (value == NULL) PyErr_Clear();
    return value;
}

/* d[key] = value, consuming value (which may be NULL: an error already set). */
static int put(PyObject *d, PyObject *key, PyObject *value) {
    int r;
    if (value == NULL) return -1;
    r = PyDict_SetItem(d, key, value);
    Py_DECREF(value);
    return r;
}

/* Truthiness of a field that must be None or an exact str: 1/0, or -2 (another type). */
static int str_truth(PyObject *obj) {
    if (obj == Py_None) return 0;
    if (!PyUnicode_CheckExact(obj)) return -2;
    return PyUnicode_GET_LENGTH(obj) > 0;
}

static int note_truncated(am_state *st, PyObject *pointer) {
    if (st->truncated == NULL && (st->truncated = PyList_New(0)) == NULL) return -1;
    return PyList_Append(st->truncated, pointer) < 0 ? -1 : 1;
}

/* cap(value, limit, pointer, truncated) on an ASCII str (the caller checked): a new ref. */
static PyObject *cap_ascii(am_state *st, PyObject *value, Py_ssize_t limit, PyObject *pointer) {
    if (PyUnicode_GET_LENGTH(value) <= limit) return Py_NewRef(value);
    if (note_truncated(st, pointer) < 0) return NULL;
    return PyUnicode_Substring(value, 0, limit);
}

static int read_limit(PyObject *limits, Py_ssize_t i, Py_ssize_t *out) {
    PyObject *item = PyTuple_GET_ITEM(limits, i);
    if (!PyLong_CheckExact(item)) return 0;
    *out = PyLong_AsSsize_t(item);
    if (*out == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return *out >= 0; /* a negative limit slices from the end in Python: not covered */
}

/* Exact int -> long long, 0 when it does not fit (not covered). */
static int as_ll(PyObject *obj, long long *out) {
    int overflow;
    if (!PyLong_CheckExact(obj)) return 0;
    *out = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (*out == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return overflow == 0;
}

/* -- the headers ------------------------------------------------------------------ */

/* Headers.pick of a Headers already indexed (_bytes): a new list, Py_None (a value that
 * is not bytes: not covered), or NULL with an exception set. */
static PyObject *pick_indexed(PyObject *index, PyObject *raw_names) {
    Py_ssize_t k = PyTuple_GET_SIZE(raw_names), i;
    PyObject *result = PyList_New(k); /* may collect garbage: before anything is borrowed */
    if (result == NULL) return NULL;
    for (i = 0; i < k; i++) {
        PyObject *value = PyDict_GetItemWithError(index, PyTuple_GET_ITEM(raw_names, i));
        if (value == NULL) {
            if (PyErr_Occurred()) goto error;
            value = Py_NewRef(Py_None);
        } else if (PyBytes_CheckExact(value)) {
            value = PyUnicode_DecodeLatin1(PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value),
                                           NULL);
            if (value == NULL) goto error;
        } else {
            Py_DECREF(result);
            Py_RETURN_NONE;
        }
        PyList_SET_ITEM(result, i, value);
    }
    return result;
error:
    Py_DECREF(result);
    return NULL;
}

static int pick_headers(am_state *st, PyObject *ex, PyObject *ctx, const am_event_hooks *hooks) {
    PyObject *headers = get(ex, S_headers), *picked = NULL;
    Py_ssize_t i;
    if (headers == NULL) return 0;
    if (Py_TYPE(headers) == (PyTypeObject *)PyTuple_GET_ITEM(ctx, AM_CTX_HEADERS)) {
        PyObject *map = get(headers, S__map), *cached = get(headers, S__bytes);
        PyObject *raw = NULL;
        if (map == Py_None && cached == Py_None) raw = get(headers, S__raw);
        if (map == Py_None && cached != NULL && PyDict_CheckExact(cached)) {
            /* indexed (a resolver read a header): Python's pick reads the index */
            picked = pick_indexed(cached, PyTuple_GET_ITEM(ctx, AM_CTX_PICKED_RAW));
            if (picked == Py_None) Py_CLEAR(picked);
            else if (picked == NULL) {
                Py_DECREF(map);
                Py_DECREF(cached);
                Py_DECREF(headers);
                return -1;
            }
        }
        Py_XDECREF(map);
        Py_XDECREF(cached);
        if (raw != NULL) { /* a fresh Headers over raw ASGI headers: the C pick */
            picked = hooks->pick(raw, PyTuple_GET_ITEM(ctx, AM_CTX_PICKED_RAW));
            Py_DECREF(raw);
            if (picked == NULL) {
                Py_DECREF(headers);
                return -1;
            }
            if (picked == Py_None) Py_CLEAR(picked);
        }
    }
    if (picked == NULL) { /* mapping (WSGI), indexed, or anything else: its own pick */
        PyObject *call[3] = {headers, PyTuple_GET_ITEM(ctx, AM_CTX_PICKED),
                             PyTuple_GET_ITEM(ctx, AM_CTX_PICKED_RAW)};
        picked = PyObject_VectorcallMethod(S_pick, call, 3, NULL);
        if (picked == NULL) PyErr_Clear(); /* the Python code raises it again */
    }
    Py_DECREF(headers);
    if (picked == NULL) return 0;
    st->picked = picked;
    if (!PyList_CheckExact(picked) || PyList_GET_SIZE(picked) != 6) return 0;
    for (i = 0; i < 6; i++) {
        PyObject *v = PyList_GET_ITEM(picked, i);
        if (v != Py_None && !PyUnicode_CheckExact(v)) return 0;
    }
    return 1;
}

/* The picked value i as an owned ref, so that a finalizer editing the list is harmless. */
static PyObject *picked_at(am_state *st, Py_ssize_t i) {
    return Py_NewRef(PyList_GET_ITEM(st->picked, i));
}

/* -- request id, traceparent ------------------------------------------------------ */

/* _valid_id: 1..128 characters of [A-Za-z0-9._:/+=-] (the fast test accepts a subset). */
static int valid_id(PyObject *value) {
    Py_ssize_t n = PyUnicode_GET_LENGTH(value), i;
    const Py_UCS1 *s;
    if (n < 1 || n > 128 || !PyUnicode_IS_ASCII(value)) return 0;
    s = PyUnicode_1BYTE_DATA(value);
    for (i = 0; i < n; i++) {
        Py_UCS1 c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '/' || c == '+' || c == '=' || c == '-'))
            return 0;
    }
    return 1;
}

static int is_space(Py_UCS1 c) { /* str.strip()'s ASCII whitespace */
    return (c >= 9 && c <= 13) || (c >= 28 && c <= 32);
}

static int lower_hex(const Py_UCS1 *s, Py_ssize_t n, int *all_zero) {
    Py_ssize_t i;
    *all_zero = 1;
    for (i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
        if (s[i] != '0') *all_zero = 0;
    }
    return 1;
}

/* trace_context(traceparent) of an exact str: *out a new dict or NULL (no trace). */
static int trace_from_header(PyObject *tp, PyObject **out) {
    Py_ssize_t n = PyUnicode_GET_LENGTH(tp), start = 0;
    const Py_UCS1 *s;
    int zero_trace, zero_span, z;
    PyObject *trace;
    *out = NULL;
    if (!PyUnicode_IS_ASCII(tp)) return 0; /* Unicode whitespace is stripped too */
    s = PyUnicode_1BYTE_DATA(tp);
    while (start < n && is_space(s[start])) start++;
    while (n > start && is_space(s[n - 1])) n--;
    if (n - start < 55) return 1; /* .strip()[:55] must fullmatch 55 characters */
    s += start;
    if (!lower_hex(s, 2, &z) || s[2] != '-' || !lower_hex(s + 3, 32, &zero_trace) ||
        s[35] != '-' || !lower_hex(s + 36, 16, &zero_span) || s[52] != '-' ||
        !lower_hex(s + 53, 2, &z) || zero_trace || zero_span)
        return 1;
    trace = PyDict_New();
    if (trace == NULL) return -1;
    if (put(trace, S_trace_id, PyUnicode_Substring(tp, start + 3, start + 35)) < 0 ||
        put(trace, S_span_id, PyUnicode_Substring(tp, start + 36, start + 52)) < 0) {
        Py_DECREF(trace);
        return -1;
    }
    *out = trace;
    return 1;
}

/* -- outcome ------------------------------------------------------------------------ */

typedef struct {
    PyObject *outcome, *severity, *reason; /* borrowed interned strings; reason may be NULL */
    PyObject *status;                      /* owned: the response's status (or None) */
} am_outcome;

static int auth_error_truth(PyObject *actor, PyObject *ctx) {
    PyObject *auth = get(actor, S_auth), *error;
    int truth;
    if (auth == NULL) return -2;
    if (Py_TYPE(auth) != (PyTypeObject *)PyTuple_GET_ITEM(ctx, AM_CTX_AUTH)) {
        Py_DECREF(auth);
        return -2;
    }
    error = get(auth, S_error);
    Py_DECREF(auth);
    if (error == NULL) return -2;
    truth = str_truth(error);
    Py_DECREF(error);
    return truth;
}

/* Pipeline._outcome for kind http; auth_error: the truth of actor.auth.error. */
static int decide_outcome(am_state *st, int auth_error, am_outcome *out) {
    PyObject *status = st->f[F_status];
    long long code;
    int overflow;
    if (st->f[F_exception] != Py_None) return 0;
    if (st->f[F_aborted] == Py_True) {
        if (status != Py_None && !PyLong_CheckExact(status)) return 0;
        out->outcome = S_aborted_outcome;
        out->severity = S_low;
        out->reason = S_client_disconnected;
        out->status = Py_NewRef(status);
        return 1;
    }
    if (st->f[F_aborted] != Py_False) return 0;
    if (status == Py_None) {
        out->outcome = S_error;
        out->severity = S_high;
        out->reason = S_no_response;
        out->status = Py_NewRef(I_500);
        return 1;
    }
    if (!PyLong_CheckExact(status)) return 0; /* bool, int subclasses, … */
    code = PyLong_AsLongLongAndOverflow(status, &overflow);
    if (code == -1 && PyErr_Occurred()) return -1;
    if (overflow) code = overflow > 0 ? 1000 : 0;
    out->reason = NULL;
    if (code < 400) {
        out->outcome = S_success;
        out->severity = S_info;
    } else if (code == 401 || code == 403) {
        out->outcome = S_denied;
        out->severity = S_medium;
        if (code == 403) {
            out->reason = S_authz_denied;
        } else {
            out->reason = auth_error ? S_authn_invalid_token : S_authn_required;
        }
    } else if (code < 500) {
        out->outcome = S_failure;
        out->severity = S_low;
    } else {
        out->outcome = S_error;
        out->severity = S_high;
    }
    out->status = Py_NewRef(status);
    return 1;
}

/* -- resource ----------------------------------------------------------------------- */

/* OPERATIONS.get(method, "other") of an ASCII method (borrowed interned str). */
static PyObject *operation_of(PyObject *method) {
    Py_ssize_t n = PyUnicode_GET_LENGTH(method);
    const char *m = (const char *)PyUnicode_1BYTE_DATA(method);
    switch (n) {
    case 3:
        if (memcmp(m, "GET", 3) == 0) return S_read;
        if (memcmp(m, "PUT", 3) == 0) return S_update;
        break;
    case 4:
        if (memcmp(m, "HEAD", 4) == 0) return S_read;
        if (memcmp(m, "POST", 4) == 0) return S_create;
        break;
    case 5:
        if (memcmp(m, "PATCH", 5) == 0) return S_update;
        break;
    case 6:
        if (memcmp(m, "DELETE", 6) == 0) return S_delete;
        break;
    }
    return S_other;
}

/* The route cache entry of (route, operation, rule); not covered until Python made it. */
static int route_entry(am_state *st, PyObject *ctx, PyObject *operation, PyObject *rule) {
    PyObject *key = PyTuple_Pack(3, st->f[F_route], operation, rule), *entry;
    if (key == NULL) return -1;
    entry = PyDict_GetItemWithError(PyTuple_GET_ITEM(ctx, AM_CTX_ROUTES), key); /* borrowed */
    Py_DECREF(key);
    if (entry == NULL) return PyErr_Occurred() ? -1 : 0;
    if (!PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 3) return 0;
    st->route_info = Py_NewRef(entry);
    if (!PyUnicode_CheckExact(PyTuple_GET_ITEM(entry, 0)) ||
        !PyUnicode_CheckExact(PyTuple_GET_ITEM(entry, 2)))
        return 0;
    entry = PyTuple_GET_ITEM(entry, 1);
    return entry == Py_None || PyUnicode_CheckExact(entry);
}

/* {"type", "route_params", "id"} of _resource, without the overrides (not covered). */
static int build_resource(am_state *st, PyObject **out) {
    PyObject *resource, *params = st->f[F_path_params], *route_params = NULL;
    PyObject *id_param = PyTuple_GET_ITEM(st->route_info, 1), *key, *value;
    Py_ssize_t pos = 0;
    int r = 0;
    if (params != Py_None && !PyDict_CheckExact(params)) return 0;
    resource = _PyDict_NewPresized(3);
    if (resource == NULL) return -1;
    if (PyDict_SetItem(resource, S_type, PyTuple_GET_ITEM(st->route_info, 0)) < 0) goto error;
    if (params == Py_None || PyDict_GET_SIZE(params) == 0) goto done;
    if ((route_params = PyDict_New()) == NULL) goto error;
    while (PyDict_Next(params, &pos, &key, &value)) {
        PyObject *capped;
        int failed;
        if (!PyUnicode_CheckExact(key) || !PyUnicode_IS_ASCII(key)) {
            r = 0;
            goto out;
        }
        Py_INCREF(key);
        if (PyLong_CheckExact(value)) {
            /* escape(str(v)) of an int (Flask's <int:...>): its decimal digits, unchanged;
             * beyond the interpreter's digit limit the Python code raises: not covered. */
            if ((value = PyObject_Str(value)) == NULL) {
                PyErr_Clear();
                Py_DECREF(key);
                r = 0;
                goto out;
            }
        } else if (!PyUnicode_CheckExact(value) || !PyUnicode_IS_ASCII(value)) {
            Py_DECREF(key);
            r = 0;
            goto out;
        } else {
            Py_INCREF(value);
        }
        capped = PyUnicode_Substring(value, 0, 256);
        failed = put(route_params, key, capped);
        Py_DECREF(key);
        Py_DECREF(value);
        if (failed < 0) goto error;
    }
    if (PyDict_SetItem(resource, S_route_params, route_params) < 0) goto error;
    if (id_param != Py_None) {
        PyObject *id = PyDict_GetItemWithError(route_params, id_param); /* borrowed */
        if (id == NULL && PyErr_Occurred()) goto error;
        if (id != NULL && PyDict_SetItem(resource, S_id, id) < 0) goto error;
    }
done:
    Py_XDECREF(route_params);
    *out = resource;
    return 1;
error:
    r = -1;
out:
    Py_XDECREF(route_params);
    Py_DECREF(resource);
    return r;
}

/* -- actor -------------------------------------------------------------------------- */

/* Actor.to_dict() for an actor without extra fields or changed claims. */
static int copy_list_of(PyObject *template, PyObject *out, PyObject *key, PyObject *tuple) {
    PyObject *items;
    if (!PyTuple_CheckExact(tuple)) return 0;
    if (PyTuple_GET_SIZE(tuple) == 0) return 1;
    items = PyDict_GetItemWithError(template, key); /* borrowed, copied at once */
    if (items == NULL) return PyErr_Occurred() ? -1 : 0;
    if (!PyList_CheckExact(items)) return 0;
    return put(out, key, PyList_GetSlice(items, 0, PyList_GET_SIZE(items))) < 0 ? -1 : 1;
}

static int build_actor(PyObject *actor, PyObject **out) {
    PyObject *template = get(actor, S__event), *changed = NULL, *extra = NULL;
    PyObject *roles = NULL, *scopes = NULL, *copy = NULL, *auth;
    int r = 0;
    if (template == NULL || !PyDict_CheckExact(template)) goto out; /* None: not cached yet */
    changed = get(actor, S__changed);
    extra = get(actor, S_extra);
    roles = get(actor, S_roles);
    scopes = get(actor, S_scopes);
    if (changed == NULL || !PyTuple_CheckExact(changed) || PyTuple_GET_SIZE(changed) != 0 ||
        extra == NULL || !PyTuple_CheckExact(extra) || PyTuple_GET_SIZE(extra) != 0 ||
        roles == NULL || scopes == NULL)
        goto out;
    auth = PyDict_GetItemWithError(template, S_auth); /* borrowed, copied at once */
    if (auth == NULL) {
        r = PyErr_Occurred() ? -1 : 0;
        goto out;
    }
    if (!PyDict_CheckExact(auth)) goto out;
    if ((copy = PyDict_Copy(template)) == NULL) goto error;
    /* the template's own "auth" may be gone if a finalizer edited it: read it again */
    auth = PyDict_GetItemWithError(template, S_auth);
    if (auth == NULL || !PyDict_CheckExact(auth)) {
        r = PyErr_Occurred() ? -1 : 0;
        goto out;
    }
    if (put(copy, S_auth, PyDict_Copy(auth)) < 0) goto error;
    if ((r = copy_list_of(template, copy, S_roles, roles)) <= 0) goto out;
    if ((r = copy_list_of(template, copy, S_scopes, scopes)) <= 0) goto out;
    *out = copy;
    copy = NULL;
    r = 1;
    goto out;
error:
    r = -1;
out:
    Py_XDECREF(template);
    Py_XDECREF(changed);
    Py_XDECREF(extra);
    Py_XDECREF(roles);
    Py_XDECREF(scopes);
    Py_XDECREF(copy);
    return r;
}

/* -- source ------------------------------------------------------------------------- */

static int build_source(am_state *st, PyObject *ctx, Py_ssize_t limit_header,
                        Py_ssize_t limit_agent, PyObject **out) {
    PyObject *client = st->f[F_client], *peer = Py_None, *port = Py_None, *source;
    PyObject *xff = PyList_GET_ITEM(st->picked, 3), *forwarded = PyList_GET_ITEM(st->picked, 4);
    PyObject *agent = PyList_GET_ITEM(st->picked, 5), *raw;
    int forwarding;
    if (client != Py_None) {
        if (!PyTuple_CheckExact(client) || PyTuple_GET_SIZE(client) != 2) return 0;
        peer = PyTuple_GET_ITEM(client, 0);
        port = PyTuple_GET_ITEM(client, 1);
        if (!PyUnicode_CheckExact(peer)) return 0;
        if (port != Py_None && !PyLong_CheckExact(port)) return 0;
    }
    raw = str_truth(xff) ? xff : str_truth(forwarded) ? forwarded : NULL;
    forwarding = raw != NULL;
    /* ProxyTrust.client_ip: it returns the peer unless it has forwarding headers to read */
    if (forwarding && peer != Py_None && PyTuple_GET_ITEM(ctx, AM_CTX_PROXIES) != Py_False)
        return 0;
    if (str_truth(agent) && !PyUnicode_IS_ASCII(agent)) return 0; /* header_text decodes */
    if (forwarding && !PyUnicode_IS_ASCII(raw)) return 0;
    source = _PyDict_NewPresized(4);
    if (source == NULL) return -1;
    /* owned references throughout: the dict allocations may run a finalizer */
    Py_INCREF(peer);
    Py_INCREF(port);
    Py_INCREF(agent);
    if (forwarding) Py_INCREF(raw);
    if (PyDict_SetItem(source, S_ip, peer != Py_None ? peer : S_unknown) < 0) goto error;
    if (port != Py_None && PyObject_IsTrue(port) && PyDict_SetItem(source, S_port, port) < 0)
        goto error;
    if (str_truth(agent) && put(source, S_user_agent,
                                cap_ascii(st, agent, limit_agent, S_ptr_agent)) < 0)
        goto error;
    if (forwarding && put(source, S_forwarded_for,
                          cap_ascii(st, raw, limit_header, S_ptr_forwarded)) < 0)
        goto error;
    Py_DECREF(peer);
    Py_DECREF(port);
    Py_DECREF(agent);
    if (forwarding) Py_DECREF(raw);
    *out = source;
    return 1;
error:
    Py_DECREF(peer);
    Py_DECREF(port);
    Py_DECREF(agent);
    if (forwarding) Py_DECREF(raw);
    Py_DECREF(source);
    return -1;
}

/* -- request ------------------------------------------------------------------------ */

/* [A-Za-z0-9_-]{4,} then '.', from s[*i]: the part of _JWT_RE after "eyJ" (a run of
 * the class can only end before a character outside it, so no backtracking is needed). */
static int jwt_segment(const Py_UCS1 *s, Py_ssize_t n, Py_ssize_t *i) {
    Py_ssize_t start = *i;
    while (*i < n && ((s[*i] >= 'A' && s[*i] <= 'Z') || (s[*i] >= 'a' && s[*i] <= 'z') ||
                      (s[*i] >= '0' && s[*i] <= '9') || s[*i] == '_' || s[*i] == '-'))
        (*i)++;
    if (*i - start < 4 || *i >= n || s[*i] != '.') return 0;
    (*i)++;
    return 1;
}

/* _JWT_RE.search(value) of ASCII characters s[0:n]. */
static int has_jwt(const Py_UCS1 *s, Py_ssize_t n) {
    Py_ssize_t at, i;
    for (at = 0; at + 3 <= n; at++) {
        if (s[at] != 'e' || s[at + 1] != 'y' || s[at + 2] != 'J') continue;
        i = at + 3;
        if (jwt_segment(s, n, &i) && jwt_segment(s, n, &i)) return 1;
    }
    return 0;
}

/* Whether redact_query(escape(query)) leaves an ASCII query as it is, and that can be told
 * without unquoting: 1 yes, 0 not covered (a '%', a secret name, a JWT), -1 error.  Without
 * '%', unquote_plus only turns '+' into ' ', which no JWT character or '.' is. */
static int query_unchanged(PyObject *query, PyObject *secrets) {
    Py_ssize_t n = PyUnicode_GET_LENGTH(query), start = 0;
    const Py_UCS1 *s;
    if (!PyUnicode_IS_ASCII(query)) return 0;
    s = PyUnicode_1BYTE_DATA(query);
    if (memchr(s, '%', (size_t)n) != NULL) return 0;
    while (start <= n) {
        const Py_UCS1 *amp = memchr(s + start, '&', (size_t)(n - start));
        Py_ssize_t end = amp != NULL ? amp - s : n, eq = start, j;
        while (eq < end && s[eq] != '=') eq++;
        if (eq < end && eq + 1 < end) { /* a value: is the name secret, the value a JWT? */
            PyObject *key = PyUnicode_New(eq - start, 127);
            Py_UCS1 *k;
            int secret;
            if (key == NULL) return -1;
            k = PyUnicode_1BYTE_DATA(key);
            for (j = start; j < eq; j++) {
                Py_UCS1 c = s[j];
                k[j - start] = (Py_UCS1)(c == '+' ? ' ' : c >= 'A' && c <= 'Z' ? c + 32 : c);
            }
            secret = PySet_Contains(secrets, key);
            Py_DECREF(key);
            if (secret != 0) return secret < 0 ? -1 : 0;
            if (has_jwt(s + eq + 1, end - eq - 1)) return 0;
        }
        start = end + 1;
    }
    return 1;
}

/* The checks of _request that need no allocation: 1 covered, 0 not. */
static int request_covered(am_state *st, PyObject *decision, PyObject *ctx) {
    PyObject *method = st->f[F_method], *path = st->f[F_path], *extra = st->f[F_extra];
    PyObject *host = PyList_GET_ITEM(st->picked, 1), *query = st->f[F_query], *allowed;
    int ok;
    if (!PyUnicode_CheckExact(method) || !PyUnicode_IS_ASCII(method)) return 0;
    if (!PyUnicode_CheckExact(path) || !PyUnicode_IS_ASCII(path)) return 0;
    if (!PyUnicode_CheckExact(st->f[F_http_version])) return 0;
    if (str_truth(query) < 0) return 0;
    if (str_truth(host) > 0 && !PyUnicode_IS_ASCII(host)) return 0;
    if (st->f[F_request_body] != Py_None || st->f[F_response_body] != Py_None) return 0;
    if (extra != Py_None && !PyDict_CheckExact(extra)) return 0;
    if (str_truth(query) > 0 && (ok = query_unchanged(query, PyTuple_GET_ITEM(ctx, AM_CTX_SECRETS))) <= 0)
        return ok; /* redactions: the Python code */
    allowed = get(decision, S_headers);
    if (allowed == NULL) return 0;
    if (allowed == Py_None) {
        ok = PyTuple_GET_SIZE(PyTuple_GET_ITEM(ctx, AM_CTX_RECORD)) == 0;
    } else {
        ok = PyTuple_CheckExact(allowed) && PyTuple_GET_SIZE(allowed) == 0;
    }
    Py_DECREF(allowed);
    return ok;
}

static int build_request(am_state *st, Py_ssize_t limit_path, Py_ssize_t limit_query,
                         PyObject **out) {
    PyObject *request, *request_id = picked_at(st, 0), *host = picked_at(st, 1), *root = NULL;
    PyObject *extra = st->f[F_extra];
    int r = -1;
    request = _PyDict_NewPresized(8);
    if (request == NULL) goto out;
    if (PyDict_SetItem(request, S_id,
                       str_truth(request_id) > 0 && valid_id(request_id) ? request_id
                                                                         : st->f[F_event_id]) < 0 ||
        put(request, S_method, PyUnicode_Substring(st->f[F_method], 0, 32)) < 0 ||
        put(request, S_path, cap_ascii(st, st->f[F_path], limit_path, S_ptr_path)) < 0 ||
        PyDict_SetItem(request, S_scheme, st->f[F_scheme]) < 0 ||
        put(request, S_protocol, PyUnicode_Concat(S_http_prefix, st->f[F_http_version])) < 0 ||
        PyDict_SetItem(request, S_bytes, st->f[F_request_bytes]) < 0)
        goto out;
    if (st->f[F_route] != Py_None && PyDict_SetItem(request, S_route, st->f[F_route]) < 0)
        goto out;
    if (extra != Py_None) {
        root = PyDict_GetItemWithError(extra, S_root_key); /* borrowed, owned at once */
        if (root == NULL && PyErr_Occurred()) goto out;
        if (root != NULL) {
            if (!PyUnicode_CheckExact(root) || !PyUnicode_IS_ASCII(root)) {
                root = NULL;
                r = 0;
                goto out;
            }
            Py_INCREF(root);
            if (put(request, S_root_path, PyUnicode_Substring(root, 0, limit_path)) < 0) goto out;
        }
    }
    if (str_truth(st->f[F_query]) > 0 &&
        put(request, S_query, cap_ascii(st, st->f[F_query], limit_query, S_ptr_query)) < 0)
        goto out;
    if (str_truth(host) > 0) {
        if (PyUnicode_GET_LENGTH(host) > 255) {
            if (note_truncated(st, S_ptr_host) < 0) goto out;
            if (put(request, S_host, PyUnicode_Substring(host, 0, 255)) < 0) goto out;
        } else if (PyDict_SetItem(request, S_host, host) < 0) {
            goto out;
        }
    } else if (PyDict_SetItem(request, S_host, S_empty) < 0) {
        goto out;
    }
    *out = request;
    request = NULL;
    r = 1;
out:
    Py_XDECREF(request);
    Py_XDECREF(root);
    Py_DECREF(request_id);
    Py_DECREF(host);
    return r;
}

/* -- the event ---------------------------------------------------------------------- */

static int context_covered(PyObject *context, PyObject *ctx) {
    PyObject *names[4] = {S_annotations, S_resource_type, S_resource_id, S_action};
    int i;
    if (context == Py_None) return 1;
    if (Py_TYPE(context) != (PyTypeObject *)PyTuple_GET_ITEM(ctx, AM_CTX_CONTEXT)) return 0;
    for (i = 0; i < 4; i++) {
        PyObject *value = get(context, names[i]);
        int empty;
        if (value == NULL) return 0;
        empty = value == Py_None || (i == 0 ? PyDict_CheckExact(value) && PyDict_GET_SIZE(value) == 0
                                            : PyUnicode_CheckExact(value) &&
                                                  PyUnicode_GET_LENGTH(value) == 0);
        Py_DECREF(value);
        if (!empty) return 0; /* annotations or overrides: the Python code */
    }
    return 1;
}

static int read_exchange(am_state *st, PyObject *ex) {
    static PyObject **names[F_COUNT] = {
#define AM_ADDR(name) &S_##name,
        AM_FIELDS(AM_ADDR)
#undef AM_ADDR
    };
    int i;
    for (i = 0; i < F_COUNT; i++)
        if ((st->f[i] = get(ex, *names[i])) == NULL) return 0;
    return 1;
}

/* The checks, then the event; *event is set when 1 is returned. */
static int build(am_state *st, PyObject *const *args, const am_event_hooks *hooks,
                 PyObject **event) {
    PyObject *ex = args[0], *decision = args[1], *actor = args[2], *service = args[3];
    PyObject *ctx = args[4], *rule, *operation = NULL, *e, *part, *trace = NULL;
    Py_ssize_t limit_path, limit_header, limit_agent, limit_query;
    long long start_mono, end_mono, duration;
    am_outcome oc = {NULL, NULL, NULL, NULL};
    int r;

    if (Py_TYPE(decision) != (PyTypeObject *)PyTuple_GET_ITEM(ctx, AM_CTX_DECISION) ||
        Py_TYPE(actor) != (PyTypeObject *)PyTuple_GET_ITEM(ctx, AM_CTX_ACTOR))
        return 0;
    if (!read_limit(PyTuple_GET_ITEM(ctx, AM_CTX_LIMITS), 0, &limit_path) ||
        !read_limit(PyTuple_GET_ITEM(ctx, AM_CTX_LIMITS), 1, &limit_header) ||
        !read_limit(PyTuple_GET_ITEM(ctx, AM_CTX_LIMITS), 2, &limit_agent) ||
        !read_limit(PyTuple_GET_ITEM(ctx, AM_CTX_LIMITS), 3, &limit_query))
        return 0;
    AM_TRY(pick_headers(st, ex, ctx, hooks)); /* first: it may run Python code */
    AM_TRY(read_exchange(st, ex));
    if (!PyUnicode_CheckExact(st->f[F_kind]) || PyUnicode_Compare(st->f[F_kind], S_http) != 0)
        return 0; /* websocket, auth: the Python code */
    if (st->f[F_route] != Py_None && !PyUnicode_CheckExact(st->f[F_route])) return 0;
    if (!PyLong_CheckExact(st->f[F_start_ns]) || !PyLong_CheckExact(st->f[F_end_ns])) return 0;
    if (!as_ll(st->f[F_start_mono], &start_mono) || !as_ll(st->f[F_end_mono], &end_mono))
        return 0;
    if (__builtin_sub_overflow(end_mono, start_mono, &duration)) return 0;
    if (st->f[F_trace] != Py_None &&
        (!PyTuple_CheckExact(st->f[F_trace]) || PyTuple_GET_SIZE(st->f[F_trace]) < 2))
        return 0;
    if (!context_covered(st->f[F_context], ctx)) return 0;
    AM_TRY(request_covered(st, decision, ctx));
    rule = get(decision, S_rule);
    if (rule == NULL) return 0;
    r = PyUnicode_CheckExact(rule);
    if (r) {
        PyObject *id_template = get(decision, S_resource_id);
        r = id_template != NULL && str_truth(id_template) == 0; /* a template: Python */
        Py_XDECREF(id_template);
    }
    if (r) {
        operation = operation_of(st->f[F_method]);
        r = route_entry(st, ctx, operation, rule);
        if (r > 0) {
            PyObject *stamp = PyDict_GetItemWithError(PyTuple_GET_ITEM(ctx, AM_CTX_STAMPS), rule);
            if (stamp == NULL) r = PyErr_Occurred() ? -1 : 0; /* _stamp makes it first */
            else st->stamp = Py_NewRef(stamp);
        }
    }
    Py_DECREF(rule);
    if (r <= 0) return r;
    if (st->f[F_trace] == Py_None) {
        PyObject *tp = PyList_GET_ITEM(st->picked, 2);
        if (str_truth(tp) > 0) {
            Py_INCREF(tp);
            r = trace_from_header(tp, &trace);
            Py_DECREF(tp);
            if (r <= 0) return r;
        }
    }
    /* _build reads actor.auth.error whatever the status: an actor without it is Python's */
    r = auth_error_truth(actor, ctx);
    if (r >= 0) r = decide_outcome(st, r, &oc);
    if (r <= 0) {
        if (r < -1) r = 0;
        Py_XDECREF(trace);
        return r;
    }

    e = _PyDict_NewPresized(20); /* as Python's dict display: no resizing while filled */
    if (e == NULL) goto error;
    /* insertion order is the Python literal's */
    if (PyDict_SetItem(e, S_schema_version, S_schema) < 0 ||
        PyDict_SetItem(e, S_event_id, st->f[F_event_id]) < 0 ||
        put(e, S_time, hooks->format_time(st->f[F_start_ns])) < 0 ||
        put(e, S_end_time, hooks->format_time(PyObject_IsTrue(st->f[F_end_ns])
                                                  ? st->f[F_end_ns]
                                                  : st->f[F_start_ns])) < 0 ||
        put(e, S_duration_us, PyLong_FromLongLong(duration > 0 ? duration / 1000 : 0)) < 0 ||
        PyDict_SetItem(e, S_kind, st->f[F_kind]) < 0 ||
        PyDict_SetItem(e, S_action, PyTuple_GET_ITEM(st->route_info, 2)) < 0 ||
        PyDict_SetItem(e, S_operation, operation) < 0 ||
        PyDict_SetItem(e, S_outcome, oc.outcome) < 0 ||
        PyDict_SetItem(e, S_severity, oc.severity) < 0)
        goto error;
    part = NULL;
    if ((r = build_actor(actor, &part)) <= 0) goto not_built;
    if (put(e, S_actor, part) < 0) goto error;
    if ((r = build_source(st, ctx, limit_header, limit_agent, &part)) <= 0) goto not_built;
    if (put(e, S_source, part) < 0) goto error;
    if ((r = build_request(st, limit_path, limit_query, &part)) <= 0) goto not_built;
    if (put(e, S_request, part) < 0) goto error;
    if ((part = PyDict_New()) == NULL) goto error;
    if (PyDict_SetItem(part, S_bytes, st->f[F_response_bytes]) < 0 ||
        (oc.status != Py_None && PyDict_SetItem(part, S_status_code, oc.status) < 0)) {
        Py_DECREF(part);
        goto error;
    }
    if (put(e, S_response, part) < 0) goto error;
    if ((r = build_resource(st, &part)) <= 0) goto not_built;
    if (put(e, S_resource, part) < 0) goto error;
    if (PyDict_SetItem(e, S_service, service) < 0 || PyDict_SetItem(e, S_policy, st->stamp) < 0)
        goto error;
    if (oc.reason != NULL && PyDict_SetItem(e, S_outcome_reason, oc.reason) < 0) goto error;
    if (st->f[F_trace] != Py_None) {
        PyObject *t = st->f[F_trace];
        if ((part = PyDict_New()) == NULL) goto error;
        if (PyDict_SetItem(part, S_trace_id, PyTuple_GET_ITEM(t, 0)) < 0 ||
            PyDict_SetItem(part, S_span_id, PyTuple_GET_ITEM(t, 1)) < 0)
            goto error_part;
        if (put(e, S_trace, part) < 0) goto error; /* put consumed part */
    } else if (trace != NULL) {
        if (PyDict_SetItem(e, S_trace, trace) < 0) goto error;
    }
    if (st->truncated != NULL && PyDict_SetItem(e, S_truncated, st->truncated) < 0) goto error;
    Py_XDECREF(trace);
    Py_DECREF(oc.status);
    *event = e;
    return 1;
error_part:
    Py_DECREF(part);
error:
    r = -1;
not_built:
    Py_XDECREF(e);
    Py_XDECREF(trace);
    Py_XDECREF(oc.status);
    return r;
}

PyObject *am_build_http_event(PyObject *const *args, Py_ssize_t nargs,
                              const am_event_hooks *hooks) {
    am_state st;
    PyObject *event = NULL, *ctx, *limits;
    int r, i;
    if (nargs != 5) {
        PyErr_Format(PyExc_TypeError, "build_http_event() takes exactly 5 arguments (%zd given)",
                     nargs);
        return NULL;
    }
    ctx = args[4];
    if (!PyTuple_CheckExact(ctx) || PyTuple_GET_SIZE(ctx) != AM_CTX_SIZE) {
        PyErr_SetString(PyExc_TypeError, "build_http_event(): ctx must be the pipeline's tuple");
        return NULL;
    }
    for (i = AM_CTX_EXCHANGE; i <= AM_CTX_DECISION; i++) {
        if (!PyType_Check(PyTuple_GET_ITEM(ctx, i))) {
            PyErr_SetString(PyExc_TypeError, "build_http_event(): ctx[0:6] must be classes");
            return NULL;
        }
    }
    limits = PyTuple_GET_ITEM(ctx, AM_CTX_LIMITS);
    if (!PyTuple_CheckExact(PyTuple_GET_ITEM(ctx, AM_CTX_PICKED)) ||
        !PyTuple_CheckExact(PyTuple_GET_ITEM(ctx, AM_CTX_PICKED_RAW)) ||
        !PyDict_CheckExact(PyTuple_GET_ITEM(ctx, AM_CTX_STAMPS)) ||
        !PyDict_CheckExact(PyTuple_GET_ITEM(ctx, AM_CTX_ROUTES)) || !PyTuple_CheckExact(limits) ||
        PyTuple_GET_SIZE(limits) != 4 || !PyBool_Check(PyTuple_GET_ITEM(ctx, AM_CTX_PROXIES)) ||
        !PyTuple_CheckExact(PyTuple_GET_ITEM(ctx, AM_CTX_RECORD)) ||
        !PyFrozenSet_CheckExact(PyTuple_GET_ITEM(ctx, AM_CTX_SECRETS))) {
        PyErr_SetString(PyExc_TypeError, "build_http_event(): malformed ctx");
        return NULL;
    }
    if (Py_TYPE(args[0]) != (PyTypeObject *)PyTuple_GET_ITEM(ctx, AM_CTX_EXCHANGE))
        Py_RETURN_NONE;
    memset(&st, 0, sizeof st);
    r = build(&st, args, hooks, &event);
    for (i = 0; i < F_COUNT; i++) Py_XDECREF(st.f[i]);
    Py_XDECREF(st.picked);
    Py_XDECREF(st.route_info);
    Py_XDECREF(st.stamp);
    Py_XDECREF(st.truncated);
    if (r < 0) return NULL;
    if (r == 0) Py_RETURN_NONE;
    return event;
}
