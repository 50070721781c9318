/* Run one single-input float model with the ONNX Runtime C API and print its outputs as text.
 *
 *   run_model MODEL.ort INPUT.bin DIM...
 *
 * INPUT.bin holds the input tensor as raw float32 with shape DIM.... Each output is printed as a line
 * "output <name>" followed by one line per value: tensors (float, double, int32, int64, bool, string)
 * flattened, and sequences of maps (scikit-learn's ZipMap) as "<index> <key> <value>".
 * Errors (e.g. a kernel missing from a reduced build) go to stderr as "error: <ORT message>", exit 2.
 */
#include <onnxruntime_c_api.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

static const OrtApi* api;
static OrtAllocator* allocator;

static void check(OrtStatus* status) {
  if (status != NULL) {
    fprintf(stderr, "error: %s\n", api->GetErrorMessage(status));
    api->ReleaseStatus(status);
    exit(2);
  }
}

static void fail(const char* what) {
  fprintf(stderr, "error: %s\n", what);
  exit(1);
}

/* The i-th element of a tensor, as text. */
static void print_element(const OrtValue* tensor, ONNXTensorElementDataType type, const void* data, size_t i) {
  switch (type) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: printf("%.9g", ((const float*)data)[i]); break;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE: printf("%.17g", ((const double*)data)[i]); break;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: printf("%" PRId32, ((const int32_t*)data)[i]); break;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: printf("%" PRId64, ((const int64_t*)data)[i]); break;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL: printf("%d", (int)((const uint8_t*)data)[i]); break;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING: {
      size_t length;
      check(api->GetStringTensorElementLength(tensor, i, &length));
      char* text = malloc(length + 1);
      if (text == NULL) fail("out of memory");
      check(api->GetStringTensorElement(tensor, length, i, text));
      text[length] = '\0';
      printf("%s", text);
      free(text);
      break;
    }
    default: fprintf(stderr, "error: element type %d is not printed\n", (int)type); exit(1);
  }
}

static size_t tensor_info(const OrtValue* tensor, ONNXTensorElementDataType* type, void** data) {
  OrtTensorTypeAndShapeInfo* info;
  size_t count;
  check(api->GetTensorTypeAndShape(tensor, &info));
  check(api->GetTensorElementType(info, type));
  check(api->GetTensorShapeElementCount(info, &count));
  api->ReleaseTensorTypeAndShapeInfo(info);
  *data = NULL;
  if (*type != ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING) check(api->GetTensorMutableData((OrtValue*)tensor, data));
  return count;
}

static void print_tensor(const OrtValue* tensor) {
  ONNXTensorElementDataType type;
  void* data;
  size_t count = tensor_info(tensor, &type, &data);
  for (size_t i = 0; i < count; ++i) {
    print_element(tensor, type, data, i);
    printf("\n");
  }
}

static void print_sequence_of_maps(const OrtValue* sequence) {
  size_t n_maps;
  check(api->GetValueCount(sequence, &n_maps));
  for (size_t m = 0; m < n_maps; ++m) {
    OrtValue *map, *keys, *values;
    check(api->GetValue(sequence, (int)m, allocator, &map));
    check(api->GetValue(map, 0, allocator, &keys));
    check(api->GetValue(map, 1, allocator, &values));
    ONNXTensorElementDataType key_type, value_type;
    void *key_data, *value_data;
    size_t n = tensor_info(keys, &key_type, &key_data);
    if (tensor_info(values, &value_type, &value_data) != n) fail("a map with more keys than values");
    for (size_t i = 0; i < n; ++i) {
      printf("%zu ", m);
      print_element(keys, key_type, key_data, i);
      printf(" ");
      print_element(values, value_type, value_data, i);
      printf("\n");
    }
    api->ReleaseValue(values);
    api->ReleaseValue(keys);
    api->ReleaseValue(map);
  }
}

int main(int argc, char** argv) {
  if (argc < 4 || argc > 11) {
    fprintf(stderr, "usage: run_model MODEL.ort INPUT.bin DIM...\n");
    return 1;
  }
  api = OrtGetApiBase()->GetApi(ORT_API_VERSION);

  int64_t dims[8];
  size_t rank = (size_t)(argc - 3), count = 1;
  for (size_t i = 0; i < rank; ++i) {
    dims[i] = strtoll(argv[3 + i], NULL, 10);
    count *= (size_t)dims[i];
  }
  float* data = malloc(count * sizeof(float));
  FILE* in = fopen(argv[2], "rb");
  if (data == NULL || in == NULL || fread(data, sizeof(float), count, in) != count) fail("cannot read the input");
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

  char* input_name;
  size_t n_outputs;
  check(api->GetAllocatorWithDefaultOptions(&allocator));
  check(api->SessionGetInputName(session, 0, allocator, &input_name));
  check(api->SessionGetOutputCount(session, &n_outputs));
  char** output_names = calloc(n_outputs, sizeof(char*));
  OrtValue** outputs = calloc(n_outputs, sizeof(OrtValue*));
  if (output_names == NULL || outputs == NULL) fail("out of memory");
  for (size_t i = 0; i < n_outputs; ++i) check(api->SessionGetOutputName(session, i, allocator, &output_names[i]));

  const char* input_names[] = {input_name};
  const OrtValue* inputs[] = {input};
  check(api->Run(session, NULL, input_names, inputs, 1, (const char* const*)output_names, n_outputs, outputs));

  for (size_t i = 0; i < n_outputs; ++i) {
    enum ONNXType kind;
    check(api->GetValueType(outputs[i], &kind));
    printf("output %s\n", output_names[i]);
    if (kind == ONNX_TYPE_TENSOR) {
      print_tensor(outputs[i]);
    } else if (kind == ONNX_TYPE_SEQUENCE) {
      print_sequence_of_maps(outputs[i]);
    } else {
      fprintf(stderr, "error: output %s has a value type (%d) this program does not print\n", output_names[i],
              (int)kind);
      return 1;
    }
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
