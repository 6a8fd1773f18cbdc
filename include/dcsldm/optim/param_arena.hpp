// dcsldm/optim/param_arena.hpp: all parameters of a model in one flat buffer (llm.c style), with one
// buffer each for gradients and the two AdamW moments, named tensor slots over them, initialisation
// from core/rng.hpp, and safetensors checkpoints by tensor name.
//
// ParamLayout (host) collects (name, shape, decay) entries; finalize() places every weight-decayed
// tensor first, each at an offset aligned to `ParamLayout::alignment` elements, so weight decay applies
// to exactly the flat range [0, n_decay). Padding elements are zero in every buffer and stay zero under
// AdamW (zero gradient, zero moments). ParamArena<T, MemSpace> owns the four buffers; a slot's View is an
// unmanaged LayoutRight View over the buffer (no copy): the arena must outlive it.
#pragma once

#include <dcsldm/core/error.hpp>
#include <dcsldm/core/rng.hpp>
#include <dcsldm/core/types.hpp>
#include <dcsldm/io/safetensors.hpp>

#include <cstdint>
#include <map>
#include <type_traits>
#include <string>
#include <vector>

namespace dcsldm::optim {

/// Whether AdamW's decoupled weight decay applies to a tensor (weights: Yes; biases, norms, embeddings
/// of positions or levels: usually No).
enum class Decay { No, Yes };

/// A named tensor inside the arena: elements [offset, offset + numel()) of each buffer, row-major.
struct TensorSlot {
  static constexpr std::size_t unplaced = std::size_t(-1);
  std::string name;
  std::size_t offset = unplaced;  ///< element offset; `unplaced` until ParamLayout::finalize()
  std::vector<std::int64_t> shape;
  Decay decay = Decay::No;
  std::size_t index = 0;  ///< position in declaration order (ParamLayout::slots())
  std::size_t numel() const {
    std::size_t n = 1;
    for (auto d : shape) n *= std::size_t(d);
    return n;
  }
};

/// Host description of an arena: tensor names, shapes, decay flags, then offsets after finalize().
class ParamLayout {
 public:
  /// Offsets are multiples of this many elements (64 bytes for float).
  static constexpr std::size_t alignment = 16;

  /// Declares a tensor of rank 1..4. Returns its slot; the offset is set by finalize(), and the
  /// arena's view functions accept this (unplaced) slot too, as they look the slot up by index.
  TensorSlot add(const std::string& name, std::vector<std::int64_t> shape, Decay decay) {
    DCSLDM_REQUIRE(!finalized_, "ParamLayout::add", "layout is finalized; cannot add '", name, "'");
    DCSLDM_REQUIRE(!name.empty() && by_name_.count(name) == 0, "ParamLayout::add",
                   name.empty() ? "empty tensor name" : "duplicate tensor name '", name, "'");
    DCSLDM_REQUIRE(shape.size() >= 1 && shape.size() <= 4, "ParamLayout::add", "tensor '", name, "' has rank ",
                   shape.size(), ", expected 1..4");
    for (auto d : shape)
      DCSLDM_REQUIRE(d >= 0, "ParamLayout::add", "tensor '", name, "' has a negative extent ", d);
    TensorSlot s;
    s.name = name;
    s.shape = std::move(shape);
    s.decay = decay;
    s.index = slots_.size();
    by_name_[name] = s.index;
    slots_.push_back(s);
    return s;
  }

  /// Places the tensors: decayed ones first (declaration order), then the others, each aligned.
  void finalize() {
    DCSLDM_REQUIRE(!finalized_, "ParamLayout::finalize", "called twice");
    std::size_t off = 0;
    for (Decay pass : {Decay::Yes, Decay::No}) {
      for (auto& s : slots_)
        if (s.decay == pass) {
          s.offset = off;
          off = round_up(off + s.numel());
        }
      if (pass == Decay::Yes) n_decay_ = off;
    }
    total_ = off;
    finalized_ = true;
  }

  bool finalized() const { return finalized_; }
  /// Elements [0, n_decay()) are weight-decayed (padding included).
  std::size_t n_decay() const { return require_final(), n_decay_; }
  /// Size of every buffer, in elements.
  std::size_t total() const { return require_final(), total_; }
  /// Sum of the tensors' element counts (without padding).
  std::size_t n_params() const {
    std::size_t n = 0;
    for (const auto& s : slots_) n += s.numel();
    return n;
  }
  const std::vector<TensorSlot>& slots() const { return slots_; }
  bool contains(const std::string& name) const { return by_name_.count(name) != 0; }
  /// The slot of `name` (placed once finalized).
  const TensorSlot& slot(const std::string& name) const {
    auto it = by_name_.find(name);
    DCSLDM_REQUIRE(it != by_name_.end(), "ParamLayout::slot", "no tensor named '", name, "'");
    return slots_[it->second];
  }
  /// The placed slot for any slot this layout handed out (by index, name checked).
  const TensorSlot& resolve(const TensorSlot& s) const {
    require_final();
    DCSLDM_REQUIRE(s.index < slots_.size() && slots_[s.index].name == s.name, "ParamLayout::resolve",
                   "slot '", s.name, "' (index ", s.index, ") does not belong to this layout");
    return slots_[s.index];
  }

 private:
  static std::size_t round_up(std::size_t n) { return (n + alignment - 1) / alignment * alignment; }
  void require_final() const {
    DCSLDM_REQUIRE(finalized_, "ParamLayout", "layout used before finalize()");
  }
  std::vector<TensorSlot> slots_;
  std::map<std::string, std::size_t> by_name_;
  std::size_t n_decay_ = 0, total_ = 0;
  bool finalized_ = false;
};

/// Which buffers a checkpoint holds: parameters only, or parameters plus AdamW state.
enum class ArenaState { Params, ParamsAndOptimizer };

/// Tensor-name prefixes of the AdamW state in checkpoints, and the name of the step counter
/// (an I64 scalar, shape ()).
inline const char* adam_m_prefix() { return "adam_m."; }
inline const char* adam_v_prefix() { return "adam_v."; }
inline const char* adam_step_name() { return "adam_step"; }

/// The flat parameter arena: params, grads, m, v (one allocation each, zero-initialised) + the layout.
template <class T, class MemSpace>
struct ParamArena {
  using value_type = T;
  using memory_space = MemSpace;
  ParamLayout layout;
  View1<T, MemSpace> params, grads, m, v;  // (total)

  ParamArena() = default;
  /// Allocates the buffers for a finalized layout; with `state == ArenaState::Params`, grads, m and v
  /// are left empty (e.g. an EMA copy or an inference model).
  explicit ParamArena(ParamLayout l, ArenaState state = ArenaState::ParamsAndOptimizer) : layout(std::move(l)) {
    DCSLDM_REQUIRE(layout.finalized(), "ParamArena", "layout must be finalized before allocation");
    const std::size_t n = layout.total();
    params = View1<T, MemSpace>("dcsldm::arena_params", n);
    if (state == ArenaState::ParamsAndOptimizer) {
      grads = View1<T, MemSpace>("dcsldm::arena_grads", n);
      m = View1<T, MemSpace>("dcsldm::arena_adam_m", n);
      v = View1<T, MemSpace>("dcsldm::arena_adam_v", n);
    }
  }
  bool has_optimizer_state() const { return m.extent(0) == layout.total() && grads.extent(0) == layout.total(); }

  /// Unmanaged LayoutRight View of rank R over `buf` (params, grads, m or v) for `slot`.
  template <int R>
  auto view(const TensorSlot& slot, const View1<T, MemSpace>& buf) const {
    const TensorSlot& s = layout.resolve(slot);
    DCSLDM_REQUIRE(s.shape.size() == std::size_t(R), "ParamArena::view", "tensor '", s.name, "' has rank ",
                   s.shape.size(), ", requested rank ", R);
    DCSLDM_REQUIRE(buf.extent(0) == layout.total(), "ParamArena::view", "buffer '", buf.label(), "' has ",
                   buf.extent(0), " elements, the layout ", layout.total(), " (empty optimizer state?)");
    T* p = buf.data() + s.offset;
    const auto& e = s.shape;
    if constexpr (R == 1) return View1<T, MemSpace>(p, e[0]);
    else if constexpr (R == 2) return View2<T, MemSpace>(p, e[0], e[1]);
    else if constexpr (R == 3) return View3<T, MemSpace>(p, e[0], e[1], e[2]);
    else {
      static_assert(R == 4, "ParamArena::view: rank 1..4");
      return View4<T, MemSpace>(p, e[0], e[1], e[2], e[3]);
    }
  }
  View1<T, MemSpace> view1(const TensorSlot& s, const View1<T, MemSpace>& buf) const { return view<1>(s, buf); }
  View2<T, MemSpace> view2(const TensorSlot& s, const View1<T, MemSpace>& buf) const { return view<2>(s, buf); }
  View3<T, MemSpace> view3(const TensorSlot& s, const View1<T, MemSpace>& buf) const { return view<3>(s, buf); }
  View4<T, MemSpace> view4(const TensorSlot& s, const View1<T, MemSpace>& buf) const { return view<4>(s, buf); }
  /// The slot's elements as a flat (numel) View over `buf`, whatever its rank.
  View1<T, MemSpace> flat(const TensorSlot& slot, const View1<T, MemSpace>& buf) const {
    const TensorSlot& s = layout.resolve(slot);
    DCSLDM_REQUIRE(buf.extent(0) == layout.total(), "ParamArena::flat", "buffer '", buf.label(), "' has ",
                   buf.extent(0), " elements, the layout ", layout.total());
    return View1<T, MemSpace>(buf.data() + s.offset, s.numel());
  }
};

namespace Impl {
template <class T>
struct Fill {
  T* p;
  T value;
  KOKKOS_INLINE_FUNCTION void operator()(const std::size_t i) const { p[i] = value; }
};
template <class ExecSpace, class T, class M>
void fill(const ExecSpace& space, const char* label, const View1<T, M>& v, T value) {
  if (v.extent(0) == 0) return;
  Kokkos::parallel_for(label, Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<std::size_t>>(space, 0, v.extent(0)),
                       Fill<T>{v.data(), value});
}
}  // namespace Impl

/// grads = 0 over the whole arena (one kernel, padding included).
template <class ExecSpace, class T, class M>
void zero_grad(const ExecSpace& space, const ParamArena<T, M>& a) {
  Impl::fill(space, "dcsldm::zero_grad", a.grads, T(0));
}

/// params[slot] ~ N(mean, stddev^2): rng::fill_normal with stream rng::stream_of(slot name), so a
/// tensor's initial values depend on (seed, name) only, not on the other tensors of the layout.
/// Argument order (mean, stddev) as in rng::fill_normal and torch.nn.init.normal_.
template <class ExecSpace, class T, class M>
void init_normal(const ExecSpace& space, const ParamArena<T, M>& a, const TensorSlot& s, std::uint64_t seed,
                 double mean, double stddev) {
  DCSLDM_REQUIRE(stddev >= 0, "init_normal", "tensor '", s.name, "': stddev = ", stddev, " must be >= 0");
  rng::fill_normal(space, a.flat(s, a.params), seed, rng::stream_of(s.name), mean, stddev);
}
/// params[slot] ~ U[lo, hi) with stream rng::stream_of(slot name).
template <class ExecSpace, class T, class M>
void init_uniform(const ExecSpace& space, const ParamArena<T, M>& a, const TensorSlot& s, std::uint64_t seed,
                  double lo, double hi) {
  rng::fill_uniform(space, a.flat(s, a.params), seed, rng::stream_of(s.name), lo, hi);
}
/// params[slot] = value (init_zeros / init_ones are the common cases).
template <class ExecSpace, class T, class M>
void init_constant(const ExecSpace& space, const ParamArena<T, M>& a, const TensorSlot& s, double value) {
  Impl::fill(space, "dcsldm::init_constant", a.flat(s, a.params), T(value));
}
template <class ExecSpace, class T, class M>
void init_zeros(const ExecSpace& space, const ParamArena<T, M>& a, const TensorSlot& s) {
  init_constant(space, a, s, 0.0);
}
template <class ExecSpace, class T, class M>
void init_ones(const ExecSpace& space, const ParamArena<T, M>& a, const TensorSlot& s) {
  init_constant(space, a, s, 1.0);
}

/// Writes the arena to `path` (atomically, SafeTensorsWriter::write): every tensor of the layout under
/// its name in the dtype of T; with ArenaState::ParamsAndOptimizer also "adam_m.<name>",
/// "adam_v.<name>" and the I64 scalar "adam_step" = `step`. `metadata` goes to __metadata__.
/// Copies the buffers to the host (a checkpoint is not a hot path).
template <class T, class M>
void save_arena(const std::string& path, const ParamArena<T, M>& a, ArenaState state = ArenaState::Params,
                std::int64_t step = 0, const std::map<std::string, std::string>& metadata = {}) {
  const bool opt = state == ArenaState::ParamsAndOptimizer;
  DCSLDM_REQUIRE(!opt || a.has_optimizer_state(), "save_arena", "'", path,
                 "': optimizer state requested but the arena has none");
  io::SafeTensorsWriter w;
  const auto hp = compat::to_host(a.params);
  std::remove_const_t<decltype(hp)> hm, hv;
  if (opt) {
    hm = compat::to_host(a.m);
    hv = compat::to_host(a.v);
  }
  for (const auto& s : a.layout.slots()) {
    const std::size_t bytes = s.numel() * sizeof(T);
    w.add_bytes(s.name, io::dtype_of<T>(), s.shape, hp.data() + s.offset, bytes);
    if (opt) {
      w.add_bytes(adam_m_prefix() + s.name, io::dtype_of<T>(), s.shape, hm.data() + s.offset, bytes);
      w.add_bytes(adam_v_prefix() + s.name, io::dtype_of<T>(), s.shape, hv.data() + s.offset, bytes);
    }
  }
  if (opt) w.add_bytes(adam_step_name(), io::DType::I64, {}, &step, sizeof(step));
  for (const auto& kv : metadata) w.set_metadata(kv.first, kv.second);
  w.write(path);
}

/// Loads the arena from `path` by tensor name (tensors of the file that the layout does not name are
/// ignored). Every tensor of the layout must be present with exactly its shape and a floating dtype
/// (F16, BF16, F32, F64; converted to T); with ArenaState::ParamsAndOptimizer the adam_m./adam_v.
/// tensors and "adam_step" too. Everything is validated before anything is copied: on any failure
/// the arena is unchanged and the error names the file, the tensor and both shapes.
/// Returns the AdamW step stored in the file (0 when loading parameters only). This overload takes a file
/// already read (e.g. after its metadata were checked), so it is not read twice.
template <class T, class M>
std::int64_t load_arena(const io::SafeTensors& f, const ParamArena<T, M>& a, ArenaState state = ArenaState::Params) {
  const bool opt = state == ArenaState::ParamsAndOptimizer;
  const std::string& path = f.path();
  DCSLDM_REQUIRE(!opt || a.has_optimizer_state(), "load_arena", "'", path,
                 "': optimizer state requested but the arena has none");
  auto check = [&](const std::string& name, const std::vector<std::int64_t>& shape) {
    DCSLDM_REQUIRE(f.contains(name), "load_arena", "'", path, "' has no tensor '", name, "' (expected shape ",
                   io::Impl::shape_str(shape), ")");
    const io::TensorInfo& ti = f.info(name);
    DCSLDM_REQUIRE(ti.shape == shape, "load_arena", "'", path, "', tensor '", name, "': file shape ",
                   io::Impl::shape_str(ti.shape), " != layout shape ", io::Impl::shape_str(shape));
    DCSLDM_REQUIRE(ti.dtype == io::DType::F16 || ti.dtype == io::DType::BF16 || ti.dtype == io::DType::F32 ||
                       ti.dtype == io::DType::F64,
                   "load_arena", "'", path, "', tensor '", name, "': dtype ", io::dtype_name(ti.dtype),
                   " is not a floating type");
  };
  for (const auto& s : a.layout.slots()) {
    check(s.name, s.shape);
    if (opt) {
      check(adam_m_prefix() + s.name, s.shape);
      check(adam_v_prefix() + s.name, s.shape);
    }
  }
  std::int64_t step = 0;
  if (opt) {
    DCSLDM_REQUIRE(f.contains(adam_step_name()), "load_arena", "'", path, "' has no tensor '", adam_step_name(), "'");
    const io::TensorInfo& ti = f.info(adam_step_name());
    DCSLDM_REQUIRE(ti.numel() == 1 && (ti.dtype == io::DType::I64 || ti.dtype == io::DType::I32), "load_arena",
                   "'", path, "', tensor '", adam_step_name(), "': expected one I64 value, got ",
                   io::dtype_name(ti.dtype), " ", io::Impl::shape_str(ti.shape));
    step = f.to_vector<std::int64_t>(adam_step_name())[0];
    DCSLDM_REQUIRE(step >= 0, "load_arena", "'", path, "': negative adam_step ", step);
  }
  // Validated: now copy (host mirrors keep the padding as it is).
  auto copy_into = [&](const View1<T, M>& buf, const char* prefix) {
    auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), buf);
    for (const auto& s : a.layout.slots()) {
      const std::vector<T> vals = f.to_vector<T>(prefix + s.name);
      std::copy(vals.begin(), vals.end(), h.data() + s.offset);
    }
    Kokkos::deep_copy(buf, h);
  };
  copy_into(a.params, "");
  if (opt) {
    copy_into(a.m, adam_m_prefix());
    copy_into(a.v, adam_v_prefix());
  }
  return step;
}

/// load_arena from the file at `path` (read and validated here).
template <class T, class M>
std::int64_t load_arena(const std::string& path, const ParamArena<T, M>& a, ArenaState state = ArenaState::Params) {
  return load_arena(io::SafeTensors::read(path), a, state);
}

}  // namespace dcsldm::optim
