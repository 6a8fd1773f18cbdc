// dcsldm/core/scratch.hpp: a bump allocator over one device buffer, for the activations and scratch of
// a model pass whose shapes change from call to call (batch, input and output grid, levels).
//
// A model builds one "plan" (a struct of Views) per shape from a Scratch: take<R>(extents...) hands out
// consecutive, aligned, unmanaged LayoutRight Views. Plans of different shapes start at offset 0 and so
// share memory: only one plan is live at a time. The buffer grows (one allocation) when a plan needs more;
// growing invalidates every plan built before, which the owner tracks with generation().
#pragma once

#include <dcsldm/core/error.hpp>
#include <dcsldm/core/types.hpp>

#include <cstddef>
#include <string>

namespace dcsldm {

template <class T, class MemSpace>
class Scratch {
 public:
  static constexpr std::size_t alignment = 16;  ///< elements (64 bytes for float)

  explicit Scratch(std::string label = "dcsldm::scratch") : label_(std::move(label)) {}

  /// Starts a plan of at most `capacity` elements (grows the buffer first when needed). Returns true
  /// when the buffer was reallocated (plans built before are then invalid).
  bool begin(std::size_t capacity) {
    used_ = 0;
    if (capacity <= buf_.extent(0)) return false;
    buf_ = View1<T, MemSpace>();  // the old buffer goes first: peak memory is the new one, not both
    // Zero-filled by a parallel kernel: every page is touched here, once, and not by the first pass of a plan
    // (a host page fault costs ~1-2 us; a 150 MB scratch has ~37000 pages).
    buf_ = View1<T, MemSpace>(label_, capacity);
    ++generation_;
    return true;
  }
  /// Measuring mode: take<>() only counts (returns Views without data) until begin() is called.
  void measure() {
    used_ = 0;
    measuring_ = true;
  }
  /// Elements a measured plan needs.
  std::size_t measured() const { return used_; }
  void end_measure() { measuring_ = false; }

  /// Runs `carve()` (which takes Views from this Scratch) once measuring, reserves what it took (growing the
  /// buffer if needed), then runs it again for real: the one way plans are built.
  template <class Carve>
  void carve_plan(Carve&& carve) {
    measure();
    carve();
    const std::size_t need = measured();
    end_measure();
    begin(need);
    carve();
  }

  View1<T, MemSpace> take1(std::size_t n0) { return View1<T, MemSpace>(next(n0), n0); }
  View2<T, MemSpace> take2(std::size_t n0, std::size_t n1) { return View2<T, MemSpace>(next(n0 * n1), n0, n1); }
  View3<T, MemSpace> take3(std::size_t n0, std::size_t n1, std::size_t n2) {
    return View3<T, MemSpace>(next(n0 * n1 * n2), n0, n1, n2);
  }

  std::size_t used() const { return used_; }
  std::size_t capacity() const { return buf_.extent(0); }
  std::size_t generation() const { return generation_; }

 private:
  T* next(std::size_t n) {
    const std::size_t off = used_;
    used_ = (used_ + n + alignment - 1) / alignment * alignment;
    if (measuring_) return nullptr;
    DCSLDM_REQUIRE(used_ <= buf_.extent(0), "Scratch::take", "'", label_, "': plan needs more than the ",
                   buf_.extent(0), " elements reserved (measure the plan first)");
    return buf_.data() + off;
  }
  std::string label_;
  View1<T, MemSpace> buf_;
  std::size_t used_ = 0;
  std::size_t generation_ = 0;
  bool measuring_ = false;
};

}  // namespace dcsldm
