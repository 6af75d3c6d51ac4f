// SandboxPool: idle Sandboxes kept per tenant, most recently released first.
//
// A Sandbox is created for one tenant and only ever handed back to that tenant, so no
// lua_State (its caches, its math.random state) is shared between tenants. Holders on any
// thread take and return them under a mutex; the Lua work itself runs outside the lock.
// Idle Sandboxes are bounded per tenant and overall; the least recently used are dropped.
#include <algorithm>

#include "sandbox/sandbox.hpp"

namespace flowrt::sandbox {

SandboxPool::Lease::Lease(SandboxPool* pool, std::string tenant, std::unique_ptr<Sandbox> sandbox)
    : pool_(pool), tenant_(std::move(tenant)), sandbox_(std::move(sandbox)) {}

SandboxPool::Lease::Lease(Lease&& other) noexcept
    : pool_(other.pool_), tenant_(std::move(other.tenant_)), sandbox_(std::move(other.sandbox_)) {
  other.pool_ = nullptr;
}

SandboxPool::Lease::~Lease() {
  if (pool_ && sandbox_) pool_->release(std::move(tenant_), std::move(sandbox_));
}

SandboxPool::SandboxPool(PoolOptions options) : options_(options) {}

SandboxPool::~SandboxPool() = default;

SandboxPool::Lease SandboxPool::acquire(std::string_view tenant_id) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = idle_.begin(); it != idle_.end(); ++it) {
      if (it->tenant == tenant_id) {
        std::unique_ptr<Sandbox> sandbox = std::move(it->sandbox);
        idle_.erase(it);
        return Lease(this, std::string(tenant_id), std::move(sandbox));
      }
    }
  }
  return Lease(this, std::string(tenant_id), std::make_unique<Sandbox>(options_.sandbox));
}

void SandboxPool::release(std::string tenant, std::unique_ptr<Sandbox> sandbox) {
  std::vector<std::unique_ptr<Sandbox>> dropped;  // destroyed outside the lock
  {
    std::lock_guard<std::mutex> lock(mutex_);
    size_t same = static_cast<size_t>(std::count_if(
        idle_.begin(), idle_.end(), [&](const Idle& idle) { return idle.tenant == tenant; }));
    if (same >= options_.max_idle_per_tenant) {
      dropped.push_back(std::move(sandbox));
    } else {
      idle_.push_front(Idle{std::move(tenant), std::move(sandbox)});
      while (idle_.size() > options_.max_idle_total) {
        dropped.push_back(std::move(idle_.back().sandbox));
        idle_.pop_back();
      }
    }
  }
}

size_t SandboxPool::idle_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return idle_.size();
}

size_t SandboxPool::idle_memory() const {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t total = 0;
  for (const auto& idle : idle_) total += idle.sandbox->memory_in_use();
  return total;
}

}  // namespace flowrt::sandbox
