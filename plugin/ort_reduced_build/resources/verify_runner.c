/* ort-reduced-build's verify runner: run one ORT-format model on an ONNX Runtime shared library.

   usage: verify_runner LIBRARY MODEL INPUTS OUTPUTS

   It loads LIBRARY with dlopen, creates a session for MODEL (one intra-op and one inter-op thread),
   feeds the tensors in INPUTS, runs every output and writes them to OUTPUTS. The file formats are
   ort_reduced_build/verify.py's (native byte order; "ORBVIN1\n" and "ORBVOUT1" magics). An INPUTS file
   whose count is 0xFFFFFFFF asks for session creation only.

   No ONNX Runtime header is needed: OrtApi is a table of function pointers that ORT only ever appends to
   (its ABI promise), so the runner asks for API version 1 and calls the functions of that version by
   their position in the table (the API_* numbers below; tests check them against onnxruntime_c_api.h).

   Exit status: 0 ran; 2 session creation failed; 3 the run failed; 4 the library or its API could not
   be loaded; 5 a bad argument, file or value. ORT's message (or ours) is the last line on stderr. */

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
  API_GetErrorMessage = 2,
  API_CreateEnv = 3,
  API_CreateSession = 7,
  API_Run = 9,
  API_CreateSessionOptions = 10,
  API_SetIntraOpNumThreads = 24,
  API_SetInterOpNumThreads = 25,
  API_SessionGetOutputCount = 31,
  API_SessionGetOutputName = 37,
  API_CreateTensorAsOrtValue = 48,
  API_CreateTensorWithDataAsOrtValue = 49,
  API_GetTensorMutableData = 51,
  API_FillStringTensor = 52,
  API_GetStringTensorDataLength = 53,
  API_GetStringTensorContent = 54,
  API_GetTensorElementType = 60,
  API_GetDimensionsCount = 61,
  API_GetDimensions = 62,
  API_GetTensorShapeElementCount = 64,
  API_GetTensorTypeAndShape = 65,
  API_GetValueType = 67,
  API_CreateCpuMemoryInfo = 69,
  API_GetAllocatorWithDefaultOptions = 78,
  API_GetValue = 80,
  API_GetValueCount = 81,
  API_ReleaseValue = 96,
  API_ReleaseTensorTypeAndShapeInfo = 99
};

enum { EXIT_SESSION = 2, EXIT_RUN = 3, EXIT_LOAD = 4, EXIT_USAGE = 5 };
enum { TYPE_TENSOR = 1, TYPE_SEQUENCE = 2, TYPE_MAP = 3 };
enum { ELEM_STRING = 8 };
#define SESSION_ONLY 0xFFFFFFFFu

typedef void *Status; /* OrtStatus*: NULL is success */
typedef struct {
  const void *(*GetApi)(uint32_t version);
  const char *(*GetVersionString)(void);
} ApiBase;

typedef void (*Function)(void);
static const Function *api; /* OrtApi seen as the table of function pointers it is */
static FILE *out;

#define CALL(slot, type, ...) (((type)api[slot])(__VA_ARGS__))

static void fail(int code, const char *what, const char *detail) {
  fprintf(stderr, "%s: %s\n", what, detail);
  exit(code);
}

static void check(Status status, int code, const char *what) {
  if (status != NULL) {
    fail(code, what, CALL(API_GetErrorMessage, const char *(*)(Status), status));
  }
}

static size_t element_size(uint32_t type) {
  switch (type) {
    case 2: case 3: case 9: return 1;         /* uint8, int8, bool */
    case 4: case 5: case 10: case 16: return 2; /* uint16, int16, float16, bfloat16 */
    case 1: case 6: case 12: return 4;        /* float, int32, uint32 */
    case 7: case 11: case 13: return 8;       /* int64, double, uint64 */
    default: return 0;
  }
}

/* ---- reading INPUTS ---- */

static FILE *in;

static void read_exact(void *buffer, size_t size) {
  if (size && fread(buffer, 1, size, in) != size) fail(EXIT_USAGE, "inputs", "truncated file");
}

static uint32_t read_u32(void) {
  uint32_t value;
  read_exact(&value, sizeof value);
  return value;
}

static void *checked_malloc(size_t size) {
  void *p = malloc(size ? size : 1);
  if (p == NULL) fail(EXIT_USAGE, "inputs", "out of memory");
  return p;
}

static char *read_string(void) {
  uint32_t length = read_u32();
  char *text = checked_malloc((size_t)length + 1);
  read_exact(text, length);
  text[length] = '\0';
  return text;
}

static void *read_tensor(void *memory_info, void *allocator) {
  uint32_t type = read_u32(), rank = read_u32();
  int64_t shape[64];
  size_t count = 1;
  void *value = NULL;
  if (rank > 64) fail(EXIT_USAGE, "inputs", "rank over 64");
  read_exact(shape, rank * sizeof(int64_t));
  for (uint32_t i = 0; i < rank; ++i) count *= (size_t)shape[i];
  if (type == ELEM_STRING) {
    char **strings = checked_malloc(count * sizeof(char *));
    for (size_t i = 0; i < count; ++i) strings[i] = read_string();
    check(CALL(API_CreateTensorAsOrtValue, Status (*)(void *, const int64_t *, size_t, int, void **), allocator,
               shape, rank, (int)type, &value),
          EXIT_USAGE, "string input");
    check(CALL(API_FillStringTensor, Status (*)(void *, const char *const *, size_t), value,
               (const char *const *)strings, count),
          EXIT_USAGE, "string input");
    return value; /* the strings were copied; freed at exit */
  }
  size_t size = element_size(type);
  if (size == 0) fail(EXIT_USAGE, "inputs", "unsupported element type");
  void *data = checked_malloc(count * size); /* owned by the tensor until exit */
  read_exact(data, count * size);
  check(CALL(API_CreateTensorWithDataAsOrtValue,
             Status (*)(const void *, void *, size_t, const int64_t *, size_t, int, void **), memory_info, data,
             count * size, shape, rank, (int)type, &value),
        EXIT_USAGE, "input");
  return value;
}

/* ---- writing OUTPUTS ---- */

static void write_bytes(const void *data, size_t size) {
  if (size && fwrite(data, 1, size, out) != size) fail(EXIT_USAGE, "outputs", "cannot write");
}

static void write_u32(uint32_t value) { write_bytes(&value, sizeof value); }

static void write_tensor(void *value) {
  void *info = NULL;
  int type = 0;
  size_t rank = 0, count = 0;
  int64_t shape[64];
  check(CALL(API_GetTensorTypeAndShape, Status (*)(const void *, void **), value, &info), EXIT_RUN, "output");
  check(CALL(API_GetTensorElementType, Status (*)(const void *, int *), info, &type), EXIT_RUN, "output");
  check(CALL(API_GetDimensionsCount, Status (*)(const void *, size_t *), info, &rank), EXIT_RUN, "output");
  if (rank > 64) fail(EXIT_RUN, "output", "rank over 64");
  check(CALL(API_GetDimensions, Status (*)(const void *, int64_t *, size_t), info, shape, rank), EXIT_RUN, "output");
  check(CALL(API_GetTensorShapeElementCount, Status (*)(const void *, size_t *), info, &count), EXIT_RUN, "output");
  CALL(API_ReleaseTensorTypeAndShapeInfo, void (*)(void *), info);
  write_u32(TYPE_TENSOR);
  write_u32((uint32_t)type);
  write_u32((uint32_t)rank);
  write_bytes(shape, rank * sizeof(int64_t));
  if (type == ELEM_STRING) {
    size_t total = 0;
    check(CALL(API_GetStringTensorDataLength, Status (*)(const void *, size_t *), value, &total), EXIT_RUN, "output");
    char *text = checked_malloc(total);
    size_t *offsets = checked_malloc(count * sizeof(size_t));
    check(CALL(API_GetStringTensorContent, Status (*)(const void *, void *, size_t, size_t *, size_t), value, text,
               total, offsets, count),
          EXIT_RUN, "output");
    for (size_t i = 0; i < count; ++i) {
      size_t end = i + 1 < count ? offsets[i + 1] : total;
      write_u32((uint32_t)(end - offsets[i]));
      write_bytes(text + offsets[i], end - offsets[i]);
    }
    free(text);
    free(offsets);
    return;
  }
  size_t size = element_size((uint32_t)type);
  if (size == 0) fail(EXIT_RUN, "output", "unsupported element type");
  void *data = NULL;
  if (count) check(CALL(API_GetTensorMutableData, Status (*)(void *, void **), value, &data), EXIT_RUN, "output");
  write_bytes(data, count * size);
}

static void write_value(void *value, void *allocator) {
  int kind = 0;
  check(CALL(API_GetValueType, Status (*)(const void *, int *), value, &kind), EXIT_RUN, "output");
  if (kind == TYPE_TENSOR) {
    write_tensor(value);
    return;
  }
  if (kind != TYPE_SEQUENCE && kind != TYPE_MAP) fail(EXIT_RUN, "output", "neither a tensor, a sequence nor a map");
  size_t count = 0;
  check(CALL(API_GetValueCount, Status (*)(const void *, size_t *), value, &count), EXIT_RUN, "output");
  write_u32((uint32_t)kind);
  write_u32((uint32_t)count); /* a map: 2, its keys then its values */
  for (size_t i = 0; i < count; ++i) {
    void *element = NULL;
    check(CALL(API_GetValue, Status (*)(const void *, int, void *, void **), value, (int)i, allocator, &element),
          EXIT_RUN, "output");
    write_value(element, allocator);
    CALL(API_ReleaseValue, void (*)(void *), element);
  }
}

int main(int argc, char **argv) {
  if (argc != 5) fail(EXIT_USAGE, "usage", "verify_runner LIBRARY MODEL INPUTS OUTPUTS");
  void *library = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (library == NULL) fail(EXIT_LOAD, argv[1], dlerror());
  const ApiBase *(*get_base)(void);
  *(void **)&get_base = dlsym(library, "OrtGetApiBase"); /* POSIX's way to take a function from dlsym */
  if (get_base == NULL) fail(EXIT_LOAD, argv[1], "no OrtGetApiBase: not an ONNX Runtime library");
  const ApiBase *base = get_base();
  api = (const Function *)base->GetApi(1);
  if (api == NULL) fail(EXIT_LOAD, argv[1], "the library does not offer ONNX Runtime API version 1");
  fprintf(stderr, "onnxruntime %s\n", base->GetVersionString());

  in = fopen(argv[3], "rb");
  if (in == NULL) fail(EXIT_USAGE, argv[3], "cannot open");
  char magic[8];
  read_exact(magic, sizeof magic);
  if (memcmp(magic, "ORBVIN1\n", sizeof magic) != 0) fail(EXIT_USAGE, argv[3], "not a verify inputs file");
  uint32_t inputs = read_u32();

  void *env = NULL, *options = NULL, *session = NULL, *memory_info = NULL, *allocator = NULL;
  check(CALL(API_CreateEnv, Status (*)(int, const char *, void **), 4 /* FATAL: errors come back as statuses */,
             "verify", &env),
        EXIT_SESSION, "environment");
  check(CALL(API_CreateSessionOptions, Status (*)(void **), &options), EXIT_SESSION, "session options");
  check(CALL(API_SetIntraOpNumThreads, Status (*)(void *, int), options, 1), EXIT_SESSION, "session options");
  check(CALL(API_SetInterOpNumThreads, Status (*)(void *, int), options, 1), EXIT_SESSION, "session options");
  check(CALL(API_CreateSession, Status (*)(const void *, const char *, const void *, void **), env, argv[2], options,
             &session),
        EXIT_SESSION, "session");
  if (inputs == SESSION_ONLY) return 0;

  check(CALL(API_CreateCpuMemoryInfo, Status (*)(int, int, void **), 0 /* device allocator */, 0, &memory_info),
        EXIT_USAGE, "memory info");
  check(CALL(API_GetAllocatorWithDefaultOptions, Status (*)(void **), &allocator), EXIT_USAGE, "allocator");
  char **input_names = checked_malloc(inputs * sizeof(char *));
  void **input_values = checked_malloc(inputs * sizeof(void *));
  for (uint32_t i = 0; i < inputs; ++i) {
    input_names[i] = read_string();
    input_values[i] = read_tensor(memory_info, allocator);
  }
  fclose(in);

  size_t outputs = 0;
  check(CALL(API_SessionGetOutputCount, Status (*)(const void *, size_t *), session, &outputs), EXIT_RUN, "outputs");
  char **output_names = checked_malloc(outputs * sizeof(char *));
  void **output_values = checked_malloc(outputs * sizeof(void *));
  for (size_t i = 0; i < outputs; ++i) {
    check(CALL(API_SessionGetOutputName, Status (*)(const void *, size_t, void *, char **), session, i, allocator,
               &output_names[i]),
          EXIT_RUN, "outputs");
    output_values[i] = NULL;
  }
  check(CALL(API_Run,
             Status (*)(void *, const void *, const char *const *, const void *const *, size_t, const char *const *,
                        size_t, void **),
             session, NULL, (const char *const *)input_names, (const void *const *)input_values, inputs,
             (const char *const *)output_names, outputs, output_values),
        EXIT_RUN, "run");

  out = fopen(argv[4], "wb");
  if (out == NULL) fail(EXIT_USAGE, argv[4], "cannot create");
  write_bytes("ORBVOUT1", 8);
  write_u32((uint32_t)outputs);
  for (size_t i = 0; i < outputs; ++i) {
    uint32_t length = (uint32_t)strlen(output_names[i]);
    write_u32(length);
    write_bytes(output_names[i], length);
    write_value(output_values[i], allocator);
  }
  if (fclose(out) != 0) fail(EXIT_USAGE, argv[4], "cannot write");
  return 0; /* the process ends here: ORT's objects need no release */
}
