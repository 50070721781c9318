/* Run one single-input float model with the ONNX Runtime C API.
 *
 *   run_model MODEL.ort INPUT.bin OUTPUT_PREFIX DIM...
 *
 * INPUT.bin holds the input tensor as raw float32 with shape DIM...; each output i is written raw to
 * OUTPUT_PREFIX<i>.bin and described on stdout as "<name> <element type> <element count>".
 * Errors (e.g. a kernel missing from a reduced build) go to stderr as "error: <ORT message>", exit 2.
 */
#include <onnxruntime_c_api.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const OrtApi* api;

static void check(OrtStatus* status) {
  if (status != NULL) {
    fprintf(stderr, "error: %s\n", api->GetErrorMessage(status));
    api->ReleaseStatus(status);
    exit(2);
  }
}

static size_t element_size(ONNXTensorElementDataType type) {
  switch (type) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: return 4;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE: return 8;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL: case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8: return 1;
    default: return 0;
  }
}

int main(int argc, char** argv) {
  if (argc < 5 || argc > 12) {
    fprintf(stderr, "usage: run_model MODEL.ort INPUT.bin OUTPUT_PREFIX DIM...\n");
    return 1;
  }
  api = OrtGetApiBase()->GetApi(ORT_API_VERSION);

  int64_t dims[8];
  size_t rank = (size_t)(argc - 4), count = 1;
  for (size_t i = 0; i < rank; ++i) {
    dims[i] = strtoll(argv[4 + i], NULL, 10);
    count *= (size_t)dims[i];
  }
  float* data = malloc(count * sizeof(float));
  FILE* in = fopen(argv[2], "rb");
  if (data == NULL || in == NULL || fread(data, sizeof(float), count, in) != count) {
    fprintf(stderr, "error: cannot read %zu floats from %s\n", count, argv[2]);
    return 1;
  }
  fclose(in);

  OrtEnv* env;
  OrtSessionOptions* options;
  OrtSession* session;
  check(api->CreateEnv(ORT_LOGGING_LEVEL_WARNING, "run_model", &env));
  check(api->CreateSessionOptions(&options));
  check(api->CreateSession(env, argv[1], options, &session));

  OrtMemoryInfo* memory;
  OrtValue* input = NULL;
  check(api->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &memory));
  check(api->CreateTensorWithDataAsOrtValue(memory, data, count * sizeof(float), dims, rank,
                                            ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, &input));

  OrtAllocator* allocator;
  char* input_name;
  size_t n_outputs;
  check(api->GetAllocatorWithDefaultOptions(&allocator));
  check(api->SessionGetInputName(session, 0, allocator, &input_name));
  check(api->SessionGetOutputCount(session, &n_outputs));
  char** output_names = calloc(n_outputs, sizeof(char*));
  OrtValue** outputs = calloc(n_outputs, sizeof(OrtValue*));
  for (size_t i = 0; i < n_outputs; ++i) check(api->SessionGetOutputName(session, i, allocator, &output_names[i]));

  const char* input_names[] = {input_name};
  const OrtValue* inputs[] = {input};
  check(api->Run(session, NULL, input_names, inputs, 1, (const char* const*)output_names, n_outputs, outputs));

  for (size_t i = 0; i < n_outputs; ++i) {
    OrtTensorTypeAndShapeInfo* info;
    ONNXTensorElementDataType type;
    size_t n;
    void* values;
    check(api->GetTensorTypeAndShape(outputs[i], &info));
    check(api->GetTensorElementType(info, &type));
    check(api->GetTensorShapeElementCount(info, &n));
    check(api->GetTensorMutableData(outputs[i], &values));
    api->ReleaseTensorTypeAndShapeInfo(info);
    char path[4096];
    snprintf(path, sizeof path, "%s%zu.bin", argv[3], i);
    FILE* out = fopen(path, "wb");
    if (out == NULL || element_size(type) == 0 || fwrite(values, element_size(type), n, out) != n) {
      fprintf(stderr, "error: cannot write output %zu (element type %d) to %s\n", i, (int)type, path);
      return 1;
    }
    fclose(out);
    printf("%s %d %zu\n", output_names[i], (int)type, n);
    api->ReleaseValue(outputs[i]);
    check(api->AllocatorFree(allocator, output_names[i]));
  }
  check(api->AllocatorFree(allocator, input_name));
  free(outputs);
  free(output_names);
  api->ReleaseValue(input);
  api->ReleaseMemoryInfo(memory);
  api->ReleaseSession(session);
  api->ReleaseSessionOptions(options);
  api->ReleaseEnv(env);
  free(data);
  return 0;
}
