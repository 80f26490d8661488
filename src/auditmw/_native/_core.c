/* auditmw._native._core: the optional C core (phase 1: the writer's chain step).
 *
 * The Python code is the specification: every function here returns exactly what its
 * reference in auditmw returns (tests/native checks it byte for byte).  The work per
 * call is a few microseconds, so the GIL is held throughout. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

#include "am_chain.h"
#include "am_sha256.h"

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

static PyMethodDef core_methods[] = {
    {"sha256", core_sha256, METH_O, sha256_doc},
    {"chain_step", (PyCFunction)(void (*)(void))core_chain_step, METH_FASTCALL, chain_step_doc},
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
    if (MacKey_Type == NULL) {
        /* kept for the life of the process: instances are checked against it */
        MacKey_Type = (PyTypeObject *)PyType_FromSpec(&MacKey_spec);
        if (MacKey_Type == NULL) {
            Py_DECREF(module);
            return NULL;
        }
    }
    if (PyModule_AddStringConstant(module, "SHA256_IMPL", AM_SHA256_IMPL) < 0 ||
        PyModule_AddObjectRef(module, "MacKey", (PyObject *)MacKey_Type) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
