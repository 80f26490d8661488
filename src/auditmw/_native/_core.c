/* auditmw._native._core: the optional C core: the writer's chain step (phase 1); the
 * request thread's header index and pick, event time and event id (phase 2).
 *
 * The Python code is the specification: every function here returns exactly what its
 * reference in auditmw returns (tests/native checks it byte for byte).  The work per
 * call is a few microseconds, so the GIL is held throughout. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <string.h>
#include <time.h>

#if defined(__linux__)
#include <sys/random.h>
#define AM_HAVE_GETRANDOM 1
#endif
#if !defined(_WIN32)
#include <pthread.h>
#endif

#include "am_chain.h"
#include "am_event.h"
#include "am_headers.h"
#include "am_sha256.h"
#include "am_merkle.h"
#include "am_time.h"

/* -- MacKey: an HMAC-SHA256 key with its inner/outer states computed once --------- */

typedef struct {
    PyObject_HEAD
    am_hmac_key key;
} MacKeyObject;

static PyTypeObject *MacKey_Type; /* created once, at the first import */

static int read_buffer(PyObject *obj, Py_buffer *view, const char *what) {
    if (PyObject_GetBuffer(obj, view, PyBUF_SIMPLE) < 0) {
        PyErr_Format(PyExc_TypeError, "%s must be a bytes-like object, not %.100s", what,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    return 0;
}

static PyObject *MacKey_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"key", NULL};
    Py_buffer secret;
    MacKeyObject *self;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*:MacKey", kwlist, &secret)) return NULL;
    self = (MacKeyObject *)type->tp_alloc(type, 0);
    if (self != NULL) am_hmac_key_init(&self->key, (const uint8_t *)secret.buf, (size_t)secret.len);
    PyBuffer_Release(&secret);
    return (PyObject *)self;
}

static void MacKey_dealloc(PyObject *self) {
    PyTypeObject *type = Py_TYPE(self);
    am_wipe(&((MacKeyObject *)self)->key, sizeof(am_hmac_key));
    type->tp_free(self);
    Py_DECREF(type); /* heap type: each instance holds a reference */
}

static PyObject *MacKey_digest(PyObject *self, PyObject *arg) {
    Py_buffer msg;
    uint8_t out[AM_SHA256_DIGEST];
    if (read_buffer(arg, &msg, "message") < 0) return NULL;
    am_hmac2(&((MacKeyObject *)self)->key, (const uint8_t *)msg.buf, (size_t)msg.len, NULL, 0,
             out);
    PyBuffer_Release(&msg);
    return PyBytes_FromStringAndSize((const char *)out, sizeof out);
}

static PyObject *MacKey_reduce(PyObject *self, PyObject *Py_UNUSED(ignored)) {
    (void)self;
    PyErr_SetString(PyExc_TypeError, "a MacKey cannot be pickled or copied");
    return NULL;
}

static PyMethodDef MacKey_methods[] = {
    {"digest", MacKey_digest, METH_O,
     "digest(message, /)\n--\n\nHMAC-SHA256 of message under this key (32 bytes)."},
    {"__reduce__", MacKey_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot MacKey_slots[] = {
    {Py_tp_new, MacKey_new},
    {Py_tp_dealloc, MacKey_dealloc},
    {Py_tp_methods, MacKey_methods},
    {Py_tp_doc, "MacKey(key)\n--\n\nAn HMAC-SHA256 key whose inner and outer states are "
                "computed once; wiped when freed."},
    {0, NULL},
};

static PyType_Spec MacKey_spec = {
    "auditmw._native._core.MacKey",
    sizeof(MacKeyObject),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    MacKey_slots,
};

/* -- functions ------------------------------------------------------------------- */

static PyObject *hex_str(const char *hex, Py_ssize_t n) {
    PyObject *s = PyUnicode_New(n, 127);
    if (s == NULL) return NULL;
    memcpy(PyUnicode_1BYTE_DATA(s), hex, (size_t)n);
    return s;
}

PyDoc_STRVAR(sha256_doc, "sha256(data, /)\n--\n\nThe SHA-256 digest of data (32 bytes).");

static PyObject *core_sha256(PyObject *module, PyObject *arg) {
    Py_buffer data;
    am_sha256 ctx;
    uint8_t out[AM_SHA256_DIGEST];
    (void)module;
    if (read_buffer(arg, &data, "data") < 0) return NULL;
    am_sha256_init(&ctx);
    am_sha256_update(&ctx, (const uint8_t *)data.buf, (size_t)data.len);
    am_sha256_final(&ctx, out);
    PyBuffer_Release(&data);
    return PyBytes_FromStringAndSize((const char *)out, sizeof out);
}

PyDoc_STRVAR(
    merkle_root_doc,
    "merkle_root(leaves, /)\n--\n\n"
    "The RFC 6962 Merkle tree hash of leaves (a list or tuple of 32-byte bytes), as\n"
    "auditmw.integrity.merkle.merkle_root computes it; None when leaves is of another\n"
    "shape (another type, an item that is not bytes of 32), so that the Python code runs.");

static PyObject *core_merkle_root(PyObject *module, PyObject *leaves) {
    Py_ssize_t n, i;
    PyObject **items;
    uint8_t *nodes, out[AM_MERKLE_LEAF];
    (void)module;
    if (!PyList_CheckExact(leaves) && !PyTuple_CheckExact(leaves)) Py_RETURN_NONE;
    n = PySequence_Fast_GET_SIZE(leaves);
    items = PySequence_Fast_ITEMS(leaves);
    for (i = 0; i < n; i++) {
        if (!PyBytes_CheckExact(items[i]) || PyBytes_GET_SIZE(items[i]) != AM_MERKLE_LEAF)
            Py_RETURN_NONE;
    }
    if ((size_t)n > SIZE_MAX / AM_MERKLE_LEAF) return PyErr_NoMemory();
    nodes = PyMem_RawMalloc(n ? (size_t)n * AM_MERKLE_LEAF : 1);
    if (nodes == NULL) return PyErr_NoMemory();
    /* Copied under the GIL: a list may change once it is released. */
    for (i = 0; i < n; i++)
        memcpy(nodes + (size_t)i * AM_MERKLE_LEAF, PyBytes_AS_STRING(items[i]), AM_MERKLE_LEAF);
    if (n >= 1024) {
        Py_BEGIN_ALLOW_THREADS
        am_merkle_root(nodes, (size_t)n, out);
        Py_END_ALLOW_THREADS
    } else {
        am_merkle_root(nodes, (size_t)n, out);
    }
    PyMem_RawFree(nodes);
    return PyBytes_FromStringAndSize((const char *)out, sizeof out);
}

PyDoc_STRVAR(
    chain_step_doc,
    "chain_step(body, head, marker, event_domain, mac_key, mac_domain, /)\n--\n\n"
    "One event of ChainEncoder._append: digest = SHA-256(event_domain + head + body),\n"
    "mac = HMAC(mac_key, mac_domain + digest) when mac_key is a MacKey, and the seal\n"
    "spliced into body after marker.  Returns (line, digest, hash_hex, mac_hex); line\n"
    "is None when marker is absent or present twice (serialize again), mac_hex is None\n"
    "without a key.  Raises ValueError where the Python code's body.index(b',') does.");

enum { ARG_BODY, ARG_HEAD, ARG_MARKER, ARG_DOMAIN, ARG_KEY, ARG_MAC_DOMAIN, N_ARGS };

static PyObject *core_chain_step(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    static const char *const names[] = {"body", "head", "marker", "event_domain", NULL,
                                        "mac_domain"};
    Py_buffer views[N_ARGS];
    int got[N_ARGS] = {0};
    const am_hmac_key *key = NULL;
    am_seal seal;
    size_t at = 0;
    int where, i;
    PyObject *line = NULL, *digest = NULL, *hash_hex = NULL, *mac_hex = NULL, *result = NULL;
    (void)module;

    if (nargs != N_ARGS) {
        PyErr_Format(PyExc_TypeError, "chain_step() takes exactly 6 arguments (%zd given)",
                     nargs);
        return NULL;
    }
    if (args[ARG_KEY] != Py_None) {
        if (!PyObject_TypeCheck(args[ARG_KEY], MacKey_Type)) {
            PyErr_Format(PyExc_TypeError, "mac_key must be a MacKey or None, not %.100s",
                         Py_TYPE(args[ARG_KEY])->tp_name);
            return NULL;
        }
        key = &((MacKeyObject *)args[ARG_KEY])->key;
    }
    for (i = 0; i < N_ARGS; i++) {
        if (i == ARG_KEY) continue;
        if (read_buffer(args[i], &views[i], names[i]) < 0) goto done;
        got[i] = 1;
    }

#define BUF(i) ((const uint8_t *)views[i].buf)
#define LEN(i) ((size_t)views[i].len)
    am_chain_seal(BUF(ARG_DOMAIN), LEN(ARG_DOMAIN), BUF(ARG_HEAD), LEN(ARG_HEAD),
                  BUF(ARG_BODY), LEN(ARG_BODY), key, BUF(ARG_MAC_DOMAIN),
                  LEN(ARG_MAC_DOMAIN), &seal);
    where = am_splice_at(BUF(ARG_BODY), LEN(ARG_BODY), BUF(ARG_MARKER), LEN(ARG_MARKER),
                         key != NULL, &at);
    if (where == AM_SPLICE_NO_COMMA) {
        PyErr_SetString(PyExc_ValueError, "subsection not found");
        goto done;
    }
    if (where == AM_SPLICE_AT) {
        if (views[ARG_BODY].len > PY_SSIZE_T_MAX - (Py_ssize_t)seal.seal_len) {
            PyErr_NoMemory();
            goto done;
        }
        line = PyBytes_FromStringAndSize(NULL, views[ARG_BODY].len + (Py_ssize_t)seal.seal_len);
        if (line == NULL) goto done;
        am_splice_write((uint8_t *)PyBytes_AS_STRING(line), BUF(ARG_BODY), LEN(ARG_BODY), at,
                        &seal);
    } else {
        line = Py_NewRef(Py_None);
    }
#undef BUF
#undef LEN
    digest = PyBytes_FromStringAndSize((const char *)seal.digest, AM_SHA256_DIGEST);
    if (digest == NULL) goto done;
    hash_hex = hex_str(seal.hash_hex, (Py_ssize_t)sizeof seal.hash_hex);
    if (hash_hex == NULL) goto done;
    mac_hex = seal.has_mac ? hex_str(seal.mac_hex, (Py_ssize_t)sizeof seal.mac_hex)
                           : Py_NewRef(Py_None);
    if (mac_hex == NULL) goto done;
    result = PyTuple_Pack(4, line, digest, hash_hex, mac_hex);

done:
    for (i = 0; i < N_ARGS; i++)
        if (got[i]) PyBuffer_Release(&views[i]);
    Py_XDECREF(line);
    Py_XDECREF(digest);
    Py_XDECREF(hash_hex);
    Py_XDECREF(mac_hex);
    return result;
}


/* -- Headers: the index and pick of raw ASGI headers ------------------------------ */

#define STACK_HEADERS 64

/* Read raw (None, or an exact list/tuple of exact (bytes, bytes) tuples) into
 * headers[0..n): pointers borrowed from raw, valid while no Python code runs.  Returns
 * n, -1 when raw is anything else (the Python code handles it), -2 on MemoryError.
 * *heap is set when headers were allocated (PyMem_Free it). */
static Py_ssize_t collect_headers(PyObject *raw, am_header *stack, am_header **headers) {
    Py_ssize_t n, i;
    PyObject **items;
    am_header *out = stack;
    *headers = stack;
    if (raw == Py_None) return 0;
    if (PyList_CheckExact(raw)) {
        n = PyList_GET_SIZE(raw);
        items = ((PyListObject *)raw)->ob_item;
    } else if (PyTuple_CheckExact(raw)) {
        n = PyTuple_GET_SIZE(raw);
        items = ((PyTupleObject *)raw)->ob_item;
    } else {
        return -1;
    }
    if (n > STACK_HEADERS) {
        out = PyMem_New(am_header, (size_t)n);
        if (out == NULL) {
            PyErr_NoMemory();
            return -2;
        }
        *headers = out;
    }
    for (i = 0; i < n; i++) {
        PyObject *pair = items[i], *name, *value;
        if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2) goto other;
        name = PyTuple_GET_ITEM(pair, 0);
        value = PyTuple_GET_ITEM(pair, 1);
        if (!PyBytes_CheckExact(name) || !PyBytes_CheckExact(value)) goto other;
        out[i].name = (const uint8_t *)PyBytes_AS_STRING(name);
        out[i].name_len = (size_t)PyBytes_GET_SIZE(name);
        out[i].value = (const uint8_t *)PyBytes_AS_STRING(value);
        out[i].value_len = (size_t)PyBytes_GET_SIZE(value);
    }
    return n;
other:
    if (out != stack) PyMem_Free(out);
    *headers = stack;
    return -1;
}

PyDoc_STRVAR(
    headers_pick_doc,
    "headers_pick(raw, raw_names, /)\n--\n\n"
    "Headers.pick on a fresh Headers(raw): the value of each of raw_names (lower-case\n"
    "bytes) among the raw ASGI headers, repeated ones joined (\", \", \"; \" for cookie),\n"
    "decoded as Latin-1; None where absent.  Returns None (the Python code must run)\n"
    "unless raw is None or a list/tuple of (bytes, bytes) and raw_names a tuple of bytes.");

static PyObject *core_headers_pick(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    am_header stack[STACK_HEADERS], *headers;
    PyObject *names, *result;
    Py_ssize_t n, k, i;
    (void)module;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "headers_pick() takes exactly 2 arguments (%zd given)",
                     nargs);
        return NULL;
    }
    names = args[1];
    if (!PyTuple_CheckExact(names)) Py_RETURN_NONE;
    k = PyTuple_GET_SIZE(names);
    for (i = 0; i < k; i++)
        if (!PyBytes_CheckExact(PyTuple_GET_ITEM(names, i))) Py_RETURN_NONE;
    /* The only allocation that may run the garbage collector (and so Python code) comes
     * first; from here on, bytes and str objects only. */
    result = PyList_New(k);
    if (result == NULL) return NULL;
    n = collect_headers(args[0], stack, &headers);
    if (n < 0) {
        Py_DECREF(result);
        if (n == -2) return NULL;
        Py_RETURN_NONE;
    }
    for (i = 0; i < k; i++) {
        PyObject *target = PyTuple_GET_ITEM(names, i), *value;
        const uint8_t *t = (const uint8_t *)PyBytes_AS_STRING(target);
        size_t t_len = (size_t)PyBytes_GET_SIZE(target), first, len, count;
        count = am_pick_len(headers, (size_t)n, t, t_len, &first, &len);
        if (count == 0) {
            value = Py_NewRef(Py_None);
        } else if (count == 1) {
            value = PyUnicode_DecodeLatin1((const char *)headers[first].value,
                                           (Py_ssize_t)len, NULL);
        } else if (len > (size_t)PY_SSIZE_T_MAX) {
            value = PyErr_NoMemory();
        } else {
            uint8_t *joined = PyMem_Malloc(len ? len : 1);
            if (joined == NULL) {
                value = PyErr_NoMemory();
            } else {
                am_pick_write(headers, (size_t)n, t, t_len, joined);
                value = PyUnicode_DecodeLatin1((const char *)joined, (Py_ssize_t)len, NULL);
                PyMem_Free(joined);
            }
        }
        if (value == NULL) {
            Py_CLEAR(result);
            break;
        }
        PyList_SET_ITEM(result, i, value);
    }
    if (headers != stack) PyMem_Free(headers);
    return result;
}

PyDoc_STRVAR(headers_index_doc,
             "headers_index(raw, /)\n--\n\n"
             "Headers._index: {lower-cased name: value} of the raw ASGI headers, repeated\n"
             "names joined in order (\", \", \"; \" for cookie).  Returns None (the Python\n"
             "code must run) unless raw is None or a list/tuple of (bytes, bytes).");

static PyObject *core_headers_index(PyObject *module, PyObject *raw) {
    am_header stack[STACK_HEADERS], *headers;
    PyObject **items = NULL, *index;
    Py_ssize_t n, i;
    (void)module;
    index = PyDict_New(); /* may collect garbage: before anything is borrowed */
    if (index == NULL) return NULL;
    n = collect_headers(raw, stack, &headers);
    if (n < 0) {
        Py_DECREF(index);
        if (n == -2) return NULL;
        Py_RETURN_NONE;
    }
    if (n > 0)
        items = PyList_CheckExact(raw) ? ((PyListObject *)raw)->ob_item
                                       : ((PyTupleObject *)raw)->ob_item;
    /* bytes keys and values only: no Python code runs, raw cannot change meanwhile */
    for (i = 0; i < n; i++) {
        const am_header *h = &headers[i];
        PyObject *name, *value = PyTuple_GET_ITEM(items[i], 1), *old;
        int failed;
        if (am_has_upper(h->name, h->name_len)) {
            size_t j;
            char *lower;
            name = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)h->name_len);
            if (name == NULL) goto error;
            lower = PyBytes_AS_STRING(name);
            for (j = 0; j < h->name_len; j++) {
                uint8_t c = h->name[j];
                lower[j] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
            }
        } else {
            name = Py_NewRef(PyTuple_GET_ITEM(items[i], 0));
        }
        old = PyDict_GetItemWithError(index, name); /* borrowed */
        if (old == NULL && PyErr_Occurred()) {
            Py_DECREF(name);
            goto error;
        }
        if (old == NULL) {
            failed = PyDict_SetItem(index, name, value);
        } else {
            Py_ssize_t old_len = PyBytes_GET_SIZE(old);
            PyObject *joined;
            char *out;
            if ((size_t)old_len > (size_t)PY_SSIZE_T_MAX - 2 - h->value_len) {
                Py_DECREF(name);
                PyErr_NoMemory();
                goto error;
            }
            joined = PyBytes_FromStringAndSize(NULL, old_len + 2 + (Py_ssize_t)h->value_len);
            if (joined == NULL) {
                Py_DECREF(name);
                goto error;
            }
            out = PyBytes_AS_STRING(joined);
            memcpy(out, PyBytes_AS_STRING(old), (size_t)old_len);
            memcpy(out + old_len,
                   am_join_separator((const uint8_t *)PyBytes_AS_STRING(name),
                                     (size_t)PyBytes_GET_SIZE(name)),
                   2);
            if (h->value_len) memcpy(out + old_len + 2, h->value, h->value_len);
            failed = PyDict_SetItem(index, name, joined);
            Py_DECREF(joined);
        }
        Py_DECREF(name);
        if (failed < 0) goto error;
    }
    if (headers != stack) PyMem_Free(headers);
    return index;
error:
    if (headers != stack) PyMem_Free(headers);
    Py_DECREF(index);
    return NULL;
}

/* -- Event time: RFC 3339 UTC, 6 fractional digits, Z ----------------------------- */

static PyObject *format_time_reference; /* the Python format_time, for what C leaves */
static int64_t time_base = -2000000; /* first microsecond of the cached second (none yet) */
static char time_prefix[AM_TIME_PREFIX_LEN];

static PyObject *ascii_str(const char *text, size_t n) {
    PyObject *s = PyUnicode_New((Py_ssize_t)n, 127);
    if (s == NULL) return NULL;
    memcpy(PyUnicode_1BYTE_DATA(s), text, n);
    return s;
}

PyDoc_STRVAR(format_time_doc,
             "format_time(ns, /)\n--\n\n"
             "Format a wall-clock time.time_ns() value as RFC 3339 UTC, 6 fractional digits,\n"
             "Z.  What is not an int in [0, 2**63) goes to the reference set by\n"
             "set_format_time_reference.");

static PyObject *core_format_time(PyObject *module, PyObject *arg) {
    (void)module;
    if (PyLong_CheckExact(arg)) {
        int overflow;
        long long ns = PyLong_AsLongLongAndOverflow(arg, &overflow);
        if (!overflow && ns >= 0) {
            int64_t micros = (int64_t)ns / 1000;
            char out[AM_TIME_LEN];
            /* the GIL is held throughout: no other thread sees a half-written cache */
            if (!(micros - time_base >= 0 && micros - time_base < 1000000)) {
                int64_t second = micros / 1000000;
                am_time_prefix(second, time_prefix);
                time_base = second * 1000000;
            }
            am_time_format(time_prefix, (uint32_t)(micros - time_base), out);
            return ascii_str(out, sizeof out);
        }
    }
    if (format_time_reference == NULL) {
        PyErr_SetString(PyExc_ValueError, "format_time: ns out of the native range, and no "
                                          "reference set (set_format_time_reference)");
        return NULL;
    }
    return PyObject_CallOneArg(format_time_reference, arg);
}

PyDoc_STRVAR(set_format_time_reference_doc,
             "set_format_time_reference(reference, /)\n--\n\n"
             "The Python format_time, called for what the C code does not format.");

static PyObject *core_set_format_time_reference(PyObject *module, PyObject *arg) {
    (void)module;
    if (!PyCallable_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "reference must be callable");
        return NULL;
    }
    Py_XSETREF(format_time_reference, Py_NewRef(arg));
    Py_RETURN_NONE;
}

/* -- Event id: UUIDv7 (RFC 9562), monotonic within the process -------------------- */

static am_ids ids = {0, 0, 0, {0}, AM_ID_POOL_NIBBLES, {0}}; /* empty pool: refill first */

#if !defined(_WIN32)
static void ids_after_fork_child(void) { ids.pos = AM_ID_POOL_NIBBLES; /* never reuse */ }
#endif

/* Fill the pool with new random bytes (getrandom; os.urandom elsewhere). */
static int ids_refill(void) {
#if defined(AM_HAVE_GETRANDOM)
    size_t got = 0;
    while (got < sizeof ids.pool) {
        ssize_t r = getrandom(ids.pool + got, sizeof ids.pool - got, 0);
        if (r < 0) {
            if (errno == EINTR) {
                if (PyErr_CheckSignals() < 0) return -1;
                continue;
            }
            if (errno == ENOSYS) break; /* an old kernel: os.urandom below */
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
        got += (size_t)r;
    }
    if (got == sizeof ids.pool) {
        ids.pos = 0;
        return 0;
    }
#endif
    {
        /* os.urandom releases the GIL: another thread may take ids meanwhile; the
         * bytes are copied in only once they are all here. */
        PyObject *os = PyImport_ImportModule("os"), *fresh;
        if (os == NULL) return -1;
        fresh = PyObject_CallMethod(os, "urandom", "n", (Py_ssize_t)sizeof ids.pool);
        Py_DECREF(os);
        if (fresh == NULL) return -1;
        if (!PyBytes_Check(fresh) || PyBytes_GET_SIZE(fresh) != (Py_ssize_t)sizeof ids.pool) {
            Py_DECREF(fresh);
            PyErr_SetString(PyExc_RuntimeError, "os.urandom returned the wrong size");
            return -1;
        }
        memcpy(ids.pool, PyBytes_AS_STRING(fresh), sizeof ids.pool);
        Py_DECREF(fresh);
        ids.pos = 0;
        return 0;
    }
}

static int wall_ns(int64_t *ns) {
#if defined(CLOCK_REALTIME) && !defined(_WIN32)
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    *ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    return 0;
#else
    PyObject *time = PyImport_ImportModule("time"), *now;
    long long value;
    if (time == NULL) return -1;
    now = PyObject_CallMethod(time, "time_ns", NULL);
    Py_DECREF(time);
    if (now == NULL) return -1;
    value = PyLong_AsLongLong(now);
    Py_DECREF(now);
    if (value == -1 && PyErr_Occurred()) return -1;
    *ns = (int64_t)value;
    return 0;
#endif
}

static int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

PyDoc_STRVAR(new_event_id_doc,
             "new_event_id(now_ns=None)\n--\n\n"
             "A new UUIDv7 (RFC 9562) string, monotonic within this process: the 12-bit\n"
             "rand_a is a counter seeded randomly each millisecond (borrowing the next\n"
             "millisecond when it runs out), rand_b comes from a buffered getrandom pool.");

static PyObject *core_new_event_id(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
                                   PyObject *kwnames) {
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    PyObject *now = Py_None;
    int64_t ms;
    char out[AM_ID_MAX_LEN];
    size_t n;
    (void)module;
    if (nargs + nkw > 1) {
        PyErr_SetString(PyExc_TypeError, "new_event_id() takes at most 1 argument");
        return NULL;
    }
    if (nkw == 1 &&
        PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0), "now_ns") != 0) {
        PyErr_Format(PyExc_TypeError, "new_event_id() got an unexpected keyword argument '%U'",
                     PyTuple_GET_ITEM(kwnames, 0));
        return NULL;
    }
    if (nargs + nkw == 1) now = args[0];
    if (now == Py_None) {
        int64_t ns;
        if (wall_ns(&ns) < 0) return NULL;
        ms = floor_div(ns, 1000000);
    } else if (PyLong_Check(now)) {
        int overflow;
        long long ns = PyLong_AsLongLongAndOverflow(now, &overflow);
        if (ns == -1 && PyErr_Occurred()) return NULL;
        if (overflow) {
            PyObject *million = PyLong_FromLong(1000000), *q;
            if (million == NULL) return NULL;
            q = PyNumber_FloorDivide(now, million);
            Py_DECREF(million);
            if (q == NULL) return NULL;
            ns = PyLong_AsLongLong(q); /* OverflowError beyond int64 milliseconds */
            Py_DECREF(q);
            if (ns == -1 && PyErr_Occurred()) return NULL;
            ms = (int64_t)ns;
        } else {
            ms = floor_div((int64_t)ns, 1000000);
        }
    } else {
        PyErr_Format(PyExc_TypeError, "now_ns must be an int or None, not %.100s",
                     Py_TYPE(now)->tp_name);
        return NULL;
    }
    if (am_id_needs_refill(&ids) && ids_refill() < 0) return NULL;
    n = am_id_next(&ids, ms, out);
    if (n == 0) {
        PyErr_SetString(PyExc_OverflowError, "new_event_id: the millisecond overflows");
        return NULL;
    }
    return ascii_str(out, n);
}

PyDoc_STRVAR(id_state_doc,
             "_id_state()\n--\n\n"
             "The id generator's state (last_ms, counter, prefix, pool, pos), for tests.");

static PyObject *core_id_state(PyObject *module, PyObject *Py_UNUSED(ignored)) {
    (void)module;
    return Py_BuildValue("(LIs#y#n)", (long long)ids.last_ms, (unsigned int)ids.counter,
                         ids.prefix, (Py_ssize_t)ids.prefix_len, (const char *)ids.pool,
                         (Py_ssize_t)sizeof ids.pool, (Py_ssize_t)ids.pos);
}

PyDoc_STRVAR(set_id_state_doc,
             "_set_id_state(last_ms, counter, prefix, pool, pos, /)\n--\n\n"
             "Set the id generator's state (tests: the same pool in C and Python).");

static PyObject *core_set_id_state(PyObject *module, PyObject *args) {
    long long last_ms;
    unsigned int counter;
    const char *prefix, *pool;
    Py_ssize_t prefix_len, pool_len, pos;
    (void)module;
    if (!PyArg_ParseTuple(args, "LIs#y#n:_set_id_state", &last_ms, &counter, &prefix,
                          &prefix_len, &pool, &pool_len, &pos))
        return NULL;
    if ((prefix_len != 0 && prefix_len != AM_ID_PREFIX_LEN) || counter > 0xFFF ||
        pool_len != (Py_ssize_t)sizeof ids.pool || pos < 0 || pos > AM_ID_POOL_NIBBLES) {
        PyErr_SetString(PyExc_ValueError, "_set_id_state: invalid state");
        return NULL;
    }
    ids.last_ms = (int64_t)last_ms;
    ids.counter = counter;
    ids.prefix_len = (uint32_t)prefix_len;
    memcpy(ids.prefix, prefix, (size_t)prefix_len);
    memcpy(ids.pool, pool, sizeof ids.pool);
    ids.pos = (size_t)pos;
    Py_RETURN_NONE;
}

/* -- The request event: Pipeline._build in one call (am_event.c) -------------------- */

static PyObject *event_pick(PyObject *raw, PyObject *raw_names) {
    PyObject *args[2] = {raw, raw_names};
    return core_headers_pick(NULL, args, 2);
}

static PyObject *event_format_time(PyObject *ns) { return core_format_time(NULL, ns); }

static const am_event_hooks event_hooks = {event_pick, event_format_time};

PyDoc_STRVAR(
    build_http_event_doc,
    "build_http_event(exchange, decision, actor, service, ctx, /)\n--\n\n"
    "Pipeline._build for the common HTTP request: the same dict (keys, order, values).\n"
    "Returns None where the request needs what only the Python code does (see am_event.c);\n"
    "ctx is the pipeline's tuple of classes and caches (Pipeline._native_ctx).");

static PyObject *core_build_http_event(PyObject *module, PyObject *const *args,
                                       Py_ssize_t nargs) {
    (void)module;
    return am_build_http_event(args, nargs, &event_hooks);
}

static PyMethodDef core_methods[] = {
    {"sha256", core_sha256, METH_O, sha256_doc},
    {"chain_step", (PyCFunction)(void (*)(void))core_chain_step, METH_FASTCALL, chain_step_doc},
    {"merkle_root", core_merkle_root, METH_O, merkle_root_doc},
    {"headers_pick", (PyCFunction)(void (*)(void))core_headers_pick, METH_FASTCALL,
     headers_pick_doc},
    {"headers_index", core_headers_index, METH_O, headers_index_doc},
    {"format_time", core_format_time, METH_O, format_time_doc},
    {"set_format_time_reference", core_set_format_time_reference, METH_O,
     set_format_time_reference_doc},
    {"new_event_id", (PyCFunction)(void (*)(void))core_new_event_id,
     METH_FASTCALL | METH_KEYWORDS, new_event_id_doc},
    {"build_http_event", (PyCFunction)(void (*)(void))core_build_http_event, METH_FASTCALL,
     build_http_event_doc},
    {"_id_state", core_id_state, METH_NOARGS, id_state_doc},
    {"_set_id_state", core_set_id_state, METH_VARARGS, set_id_state_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT,
    "auditmw._native._core",
    "The optional C core of auditmw; the Python code is its specification.",
    -1, /* single-phase: one interpreter, MacKey_Type is process-global */
    core_methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__core(void) {
    PyObject *module = PyModule_Create(&core_module);
    if (module == NULL) return NULL;
#if !defined(_WIN32)
    {
        static int at_fork_registered;
        if (!at_fork_registered) {
            if (pthread_atfork(NULL, NULL, ids_after_fork_child) != 0) {
                Py_DECREF(module);
                PyErr_SetString(PyExc_OSError, "pthread_atfork failed");
                return NULL;
            }
            at_fork_registered = 1;
        }
    }
#endif
    if (MacKey_Type == NULL) {
        /* kept for the life of the process: instances are checked against it */
        MacKey_Type = (PyTypeObject *)PyType_FromSpec(&MacKey_spec);
        if (MacKey_Type == NULL) {
            Py_DECREF(module);
            return NULL;
        }
    }
    if (am_event_init() < 0) {
        Py_DECREF(module);
        return NULL;
    }
    if (PyModule_AddStringConstant(module, "SHA256_IMPL", AM_SHA256_IMPL) < 0 ||
        PyModule_AddObjectRef(module, "MacKey", (PyObject *)MacKey_Type) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
