// Values crossing the exit path: guest data in the run page (little-endian, 1-8 bytes), handler results,
// and the monotonic clock the slice deadlines and the PM timer use.
#pragma once
#include <node_api.h>
#include <cstdint>
#include <cstring>
#include <ctime>

namespace kvmn {

inline uint64_t LoadLe(const uint8_t* p, uint32_t size) {
  uint64_t v = 0;
  memcpy(&v, p, size);
  return v;
}

inline void StoreLe(uint8_t* p, uint32_t size, uint64_t v) { memcpy(p, &v, size); }

// Converts a handler's read result (number or bigint) to raw bits; false if it is neither.
inline bool ReadResult(napi_env env, napi_value v, uint64_t* out) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t == napi_number) {
    double d;
    napi_get_value_double(env, v, &d);
    if (d >= 0 && d < 18446744073709551616.0) *out = static_cast<uint64_t>(d);
    else if (d < 0 && d >= -9223372036854775808.0) *out = static_cast<uint64_t>(static_cast<int64_t>(d));
    else *out = 0;
    return true;
  }
  if (t == napi_bigint) {
    bool lossless;
    napi_get_value_bigint_uint64(env, v, out, &lossless);
    return true;
  }
  return false;
}

inline int64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

}  // namespace kvmn
