// The leaves of one EventBridge path in each row's JSON text, numbered by distinct value: the
// event-pattern prefilter's per-row work (prefilter.py), which in Python parsed every row's
// JSON into dicts and walked them.
//
// `LeafIds(parts)` belongs to one path below a JSON root (detail.containers.exitCode over the
// detail column is ["containers", "exitCode"]). `encode` parses the asked rows of an Arrow
// string array with simdjson's DOM parser, collects the path's scalar leaves as records.py's
// `_collect` does (arrays are transparent, a key may itself hold dots, the last of duplicate
// keys wins, as in a parsed dict), writes them as a JSON array and gives each distinct array a
// number. It returns the number per row and the texts of the numbers new in this call, so
// Python works out what a value rules out once per distinct value, however many rows hold it.
// A row simdjson refuses gets -1: Python reads that row itself, so whatever the two parsers
// disagree on (integers beyond 64 bits, lone surrogates, depth) is decided as before.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <simdjson.h>

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace py = pybind11;
using simdjson::dom::element;
using simdjson::dom::element_type;

namespace {

class LeafIds {
 public:
  explicit LeafIds(std::vector<std::string> parts) : parts_(std::move(parts)) {
    if (parts_.empty()) throw py::value_error("a path needs at least one key");
  }

  size_t size() const { return ids_.size(); }

  py::tuple encode(py::buffer offsets_buffer, py::buffer data_buffer, py::object validity,
                   int64_t validity_offset, const std::vector<int64_t>& rows) {
    py::buffer_info offsets_info = offsets_buffer.request(), data_info = data_buffer.request();
    if (offsets_info.itemsize != 4 || offsets_info.size < 1 || data_info.itemsize != 1)
      throw py::value_error("offsets must be int32 and data bytes");
    const int32_t* offsets = static_cast<const int32_t*>(offsets_info.ptr);
    const int64_t count = offsets_info.size - 1;
    const char* data = static_cast<const char*>(data_info.ptr);
    const int64_t data_size = data_info.size;
    const uint8_t* valid = nullptr;
    int64_t valid_bits = 0;
    py::buffer_info valid_info;
    if (!validity.is_none()) {
      valid_info = validity.cast<py::buffer>().request();
      valid = static_cast<const uint8_t*>(valid_info.ptr);
      valid_bits = valid_info.size * 8;
      if (validity_offset < 0 || validity_offset + count > valid_bits)
        throw py::value_error("the validity bitmap does not cover the rows");
    }
    for (int64_t row : rows) {
      if (row < 0 || row >= count) throw py::index_error("a row outside the array");
      const int32_t start = offsets[row], end = offsets[row + 1];
      if (start < 0 || end < start || end > data_size)
        throw py::value_error("offsets outside the data");
    }
    const size_t known = ids_.size();
    std::vector<int32_t> out(rows.size());
    // the GIL stays held: the numbering is this object's state, and one thread at a time uses it
    for (size_t i = 0; i < rows.size(); ++i) {
      const int64_t row = rows[i], bit = validity_offset + row;
      const bool present = valid == nullptr || (valid[bit >> 3] >> (bit & 7)) & 1;
      const int32_t start = offsets[row], end = offsets[row + 1];
      // a null or empty text has no leaves (Python: no JSON, or a root that is not one)
      out[i] = present && end > start ? id_of(data + start, size_t(end - start)) : id_of_none();
    }
    py::list ids(out.size());
    for (size_t i = 0; i < out.size(); ++i) ids[i] = py::int_(out[i]);
    py::list fresh(ids_.size() - known);
    for (size_t i = known; i < ids_.size(); ++i) fresh[i - known] = py::bytes(texts_[i]);
    return py::make_tuple(ids, fresh);
  }

 private:
  int32_t id_of_none() { return number("[]"); }

  int32_t id_of(const char* text, size_t size) {
    element root;
    if (parser_.parse(text, size, true).get(root) != simdjson::SUCCESS) return -1;
    leaves_.clear();
    collect(root, 0);
    scratch_.assign(1, '[');
    for (size_t i = 0; i < leaves_.size(); ++i) {
      if (i) scratch_.push_back(',');
      if (!write(leaves_[i], scratch_)) return -1;
    }
    scratch_.push_back(']');
    return number(scratch_);
  }

  int32_t number(const std::string& text) {
    auto found = ids_.find(text);
    if (found != ids_.end()) return found->second;
    const int32_t id = int32_t(texts_.size());
    ids_.emplace(text, id);
    texts_.push_back(text);
    return id;
  }

  // records.py's _collect: the scalars under parts[i:] of node
  void collect(element node, size_t i) {
    if (node.type() == element_type::ARRAY) {
      // copied out of the result first: value_unsafe() refers into the temporary
      simdjson::dom::array items = node.get_array().value_unsafe();
      for (element item : items) collect(item, i);
      return;
    }
    const bool object = node.type() == element_type::OBJECT;
    if (i == parts_.size()) {
      if (!object) leaves_.push_back(node);
      return;
    }
    if (!object) return;
    simdjson::dom::object fields = node.get_object().value_unsafe();
    std::string key = parts_[i];
    for (size_t j = i + 1;; ++j) {
      element child;
      bool found = false;
      for (auto field : fields) {
        if (field.key == key) {  // the last one wins, as in a dict built from the text
          child = field.value;
          found = true;
        }
      }
      if (found) collect(child, j);
      if (j == parts_.size()) return;
      key += '.';
      key += parts_[j];
    }
  }

  // One leaf as JSON that orjson reads back to the value it reads from the row: numbers keep
  // their kind (an integer stays one, a float gets a point), strings are escaped.
  static bool write(element leaf, std::string& out) {
    char buffer[32];
    switch (leaf.type()) {
      case element_type::STRING:
        quote(leaf.get_string().value_unsafe(), out);
        return true;
      case element_type::INT64: {
        auto done = std::to_chars(buffer, buffer + sizeof buffer, leaf.get_int64().value_unsafe());
        out.append(buffer, done.ptr);
        return true;
      }
      case element_type::UINT64: {
        auto done =
            std::to_chars(buffer, buffer + sizeof buffer, leaf.get_uint64().value_unsafe());
        out.append(buffer, done.ptr);
        return true;
      }
      case element_type::DOUBLE: {
        const double value = leaf.get_double().value_unsafe();
        auto done = std::to_chars(buffer, buffer + sizeof buffer, value);  // shortest round trip
        if (done.ec != std::errc()) return false;
        std::string_view text(buffer, size_t(done.ptr - buffer));
        if (text.find_first_not_of("-0123456789") == std::string_view::npos) {
          out.append(text);
          out.append(".0");
        } else if (text.find_first_of("in") != std::string_view::npos) {
          return false;  // inf or nan: not JSON
        } else {
          out.append(text);
        }
        return true;
      }
      case element_type::BOOL:
        out.append(leaf.get_bool().value_unsafe() ? "true" : "false");
        return true;
      case element_type::NULL_VALUE:
        out.append("null");
        return true;
      default:
        return false;
    }
  }

  static void quote(std::string_view text, std::string& out) {
    static const char hex[] = "0123456789abcdef";
    out.push_back('"');
    for (unsigned char c : text) {
      if (c == '"' || c == '\\') {
        out.push_back('\\');
        out.push_back(char(c));
      } else if (c < 0x20) {
        out.append("\\u00");
        out.push_back(hex[c >> 4]);
        out.push_back(hex[c & 15]);
      } else {
        out.push_back(char(c));
      }
    }
    out.push_back('"');
  }

  std::vector<std::string> parts_;
  simdjson::dom::parser parser_;
  std::vector<element> leaves_;
  std::string scratch_;
  std::unordered_map<std::string, int32_t> ids_;
  std::vector<std::string> texts_;
};

}  // namespace

PYBIND11_MODULE(_leaves_native, m) {
  m.doc() = "An EventBridge path's leaves per row of JSON texts, numbered (leaves_native.cpp)";
  py::class_<LeafIds>(m, "LeafIds")
      .def(py::init<std::vector<std::string>>(), py::arg("parts"))
      .def("__len__", &LeafIds::size)
      .def("encode", &LeafIds::encode, py::arg("offsets"), py::arg("data"), py::arg("validity"),
           py::arg("validity_offset"), py::arg("rows"),
           "([leaf-list number per row, -1 where simdjson refused it], [JSON of each new "
           "number's leaf list])");
}
