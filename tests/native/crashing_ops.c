/* A tiny custom-op library for tests: domain "test.crash" with ops whose kernel creation misbehaves.
 *
 *   Ok    - a kernel that is created normally (compute does nothing; conversion never runs it)
 *   Abort - abort() when ORT creates the kernel (during session initialisation, i.e. conversion)
 *   Segv  - writes through a null pointer at kernel creation
 *   Hang  - never returns from kernel creation
 *
 * Written against ORT's stable C ABI (OrtApiBase / OrtApi slots are append-only, OrtCustomOp version 8),
 * declared here by hand so the test needs no ORT headers. Used only by the tests, loaded only because
 * a test names it with --custom-op-library.
 */
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef void OrtStatus;
typedef void *(*AnyFn)(void);
typedef struct OrtApiBase {
  const void *(*GetApi)(uint32_t version);
  const char *(*GetVersionString)(void);
} OrtApiBase;

/* OrtApi function-table slots used here (onnxruntime_c_api.h order, stable since API 1). */
enum { SLOT_CREATE_CUSTOM_OP_DOMAIN = 26, SLOT_CUSTOM_OP_DOMAIN_ADD = 27, SLOT_ADD_CUSTOM_OP_DOMAIN = 28 };
typedef OrtStatus *(*CreateDomainFn)(const char *, void **);
typedef OrtStatus *(*DomainAddFn)(void *, const void *);
typedef OrtStatus *(*AddDomainFn)(void *, void *);

typedef struct CustomOp {  /* OrtCustomOp, the fields of version 8 */
  uint32_t version;
  void *(*CreateKernel)(const struct CustomOp *op, const void *api, const void *info);
  const char *(*GetName)(const struct CustomOp *op);
  const char *(*GetExecutionProviderType)(const struct CustomOp *op);
  int (*GetInputType)(const struct CustomOp *op, size_t index);
  size_t (*GetInputTypeCount)(const struct CustomOp *op);
  int (*GetOutputType)(const struct CustomOp *op, size_t index);
  size_t (*GetOutputTypeCount)(const struct CustomOp *op);
  void (*KernelCompute)(void *kernel, void *context);
  void (*KernelDestroy)(void *kernel);
  int (*GetInputCharacteristic)(const struct CustomOp *op, size_t index);
  int (*GetOutputCharacteristic)(const struct CustomOp *op, size_t index);
  const char *name; /* ours, after the ABI fields */
} CustomOp;

static const char *get_name(const CustomOp *op) { return op->name; }
static const char *get_ep(const CustomOp *op) { (void)op; return NULL; }
static int float_type(const CustomOp *op, size_t i) { (void)op; (void)i; return 1; /* FLOAT */ }
static size_t one(const CustomOp *op) { (void)op; return 1; }
static int required(const CustomOp *op, size_t i) { (void)op; (void)i; return 0; /* INPUT_OUTPUT_REQUIRED */ }
static void compute(void *kernel, void *context) { (void)kernel; (void)context; }
static void destroy(void *kernel) { (void)kernel; }

static void *create_kernel(const CustomOp *op, const void *api, const void *info) {
  (void)api; (void)info;
  if (strcmp(op->name, "Abort") == 0) abort();
  if (strcmp(op->name, "Segv") == 0) raise(SIGSEGV);
  if (strcmp(op->name, "Hang") == 0) for (;;) pause();
  return (void *)op;
}

#define OP(n) {8, create_kernel, get_name, get_ep, float_type, one, float_type, one, compute, destroy, required, required, n}
static CustomOp ops[] = {OP("Ok"), OP("Abort"), OP("Segv"), OP("Hang")};

OrtStatus *RegisterCustomOps(void *options, const OrtApiBase *base) {
  AnyFn const *api = (AnyFn const *)base->GetApi(1);
  void *domain = NULL;
  OrtStatus *status = ((CreateDomainFn)api[SLOT_CREATE_CUSTOM_OP_DOMAIN])("test.crash", &domain);
  for (size_t i = 0; status == NULL && i < sizeof ops / sizeof ops[0]; ++i)
    status = ((DomainAddFn)api[SLOT_CUSTOM_OP_DOMAIN_ADD])(domain, &ops[i]);
  return status ? status : ((AddDomainFn)api[SLOT_ADD_CUSTOM_OP_DOMAIN])(options, domain);
}
