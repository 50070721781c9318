/* What --no-exceptions costs (docs/cmake.md, "The mobile profile"): a user error through the C API, asking a
   sequence (e.g. ZipMap's output) for tensor data. The exception-safe runtime returns an OrtStatus and the
   program goes on; a runtime built with --no-exceptions prints the message and aborts.

     cc -I ORT/include/onnxruntime/core/session benchmarks/no_exceptions_demo.c -o demo \
        BUILD/MinSizeRel/libonnxruntime.so -Wl,-rpath,BUILD/MinSizeRel && ./demo; echo "exit $?" */
#include <stdio.h>
#include "onnxruntime_c_api.h"
int main(void) {
  const OrtApi* api = OrtGetApiBase()->GetApi(ORT_API_VERSION);
  OrtMemoryInfo* info = NULL;
  OrtStatus* status = api->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &info);
  float data[2] = {1, 2};
  int64_t shape[1] = {2};
  OrtValue* tensors[2] = {NULL, NULL};
  for (int i = 0; i < 2; ++i)
    status = api->CreateTensorWithDataAsOrtValue(info, data, sizeof(data), shape, 1,
                                                 ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, &tensors[i]);
  OrtValue* sequence = NULL;
  status = api->CreateValue((const OrtValue* const*)tensors, 2, ONNX_TYPE_SEQUENCE, &sequence);
  if (status != NULL) { printf("CreateValue: %s\n", api->GetErrorMessage(status)); return 1; }
  void* out = NULL;
  status = api->GetTensorMutableData(sequence, &out);
  if (status != NULL) {
    printf("error returned: %s\n", api->GetErrorMessage(status));
    api->ReleaseStatus(status);
  } else {
    printf("no error\n");
  }
  printf("the program goes on\n");
  api->ReleaseValue(sequence);
  for (int i = 0; i < 2; ++i) api->ReleaseValue(tensors[i]);
  api->ReleaseMemoryInfo(info);
  return 0;
}
