// An Arrow string array's buffers handed over from Python (core/native.py's `string_buffers`
// and `validity`), checked before any row is read: the one reader of them that both native
// modules use (detect/json_native.cpp, logs/receivers/firelens_native.cpp).
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <string_view>
#include <vector>

namespace ecsguard {

struct StringArrayBuffers {
  StringArrayBuffers(pybind11::buffer offsets_buffer, pybind11::buffer data_buffer,
                     pybind11::object validity, int64_t validity_offset)
      : offsets_info(offsets_buffer.request()), data_info(data_buffer.request()),
        validity_offset(validity_offset) {
    if (offsets_info.itemsize != 4 || offsets_info.size < 1 || data_info.itemsize != 1)
      throw pybind11::value_error("offsets must be int32 and data bytes");
    offsets = static_cast<const int32_t*>(offsets_info.ptr);
    count = offsets_info.size - 1;
    data = static_cast<const char*>(data_info.ptr);
    if (!validity.is_none()) {
      valid_info = validity.cast<pybind11::buffer>().request();
      valid = static_cast<const uint8_t*>(valid_info.ptr);
      if (validity_offset < 0 || validity_offset + count > valid_info.size * 8)
        throw pybind11::value_error("the validity bitmap does not cover the rows");
    }
  }

  // `rows` lie in the array, and their offsets in the data
  void check(const std::vector<int64_t>& rows) const {
    for (int64_t row : rows) check_row(row);
  }

  void check_all() const {
    for (int64_t row = 0; row < count; ++row) check_row(row);
  }

  bool present(int64_t row) const {
    const int64_t bit = validity_offset + row;
    return valid == nullptr || (valid[bit >> 3] >> (bit & 7)) & 1;
  }

  // a checked row's text (a null row's slot may hold bytes: ask `present` first)
  std::string_view text(int64_t row) const {
    return std::string_view(data + offsets[row], size_t(offsets[row + 1] - offsets[row]));
  }

  pybind11::buffer_info offsets_info, data_info, valid_info;
  const int32_t* offsets = nullptr;
  const char* data = nullptr;
  const uint8_t* valid = nullptr;
  int64_t count = 0, validity_offset = 0;

 private:
  void check_row(int64_t row) const {
    if (row < 0 || row >= count) throw pybind11::index_error("a row outside the array");
    const int32_t start = offsets[row], end = offsets[row + 1];
    if (start < 0 || end < start || end > data_info.size)
      throw pybind11::value_error("offsets outside the data");
  }
};

}  // namespace ecsguard
