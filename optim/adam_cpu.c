/*
 * torch.optim.Adam / AdamW step in one pass over memory for stacked CPU tensors, with
 * per-config lr, eps and weight decay (see optim/adam.py for the rule). torch's fused Adam
 * takes one lr and eps per call, so a stack of C configs would need C calls; this loop does
 * them all in one, shared among OpenMP threads (torch's own runtime).
 */
#include <math.h>

#include "cpu_items.h"

typedef struct {
    HYPER_COMMON
    double bias_correction2_sqrt;
} Hyper;

/* The order of operations follows the eager rule, so float results agree with it. */
#define DEFINE_LOOP(NAME, T, SQRT)                                                             \
    static void NAME(T *restrict p, const T *restrict g, T *restrict m, T *restrict v,         \
                     int64_t n, T step, T eps, T l2, T decay, T w, T b2, T one_minus_b2,       \
                     T bc2, int use_l2) {                                                      \
        const T one_minus_w = (T)1 - w;                                                        \
        const int small_w = w < (T)0.5;                                                        \
        _Pragma("omp simd") for (int64_t i = 0; i < n; ++i) {                                  \
            const T pi = p[i] * decay;                                                         \
            const T grad = use_l2 ? g[i] + pi * l2 : g[i];                                     \
            const T mi = small_w ? m[i] + w * (grad - m[i])                                    \
                                 : grad - (grad - m[i]) * one_minus_w;                         \
            const T vi = v[i] * b2 + one_minus_b2 * (grad * grad);                             \
            const T denom = SQRT(vi) / bc2 + eps;                                              \
            p[i] = pi - mi / denom * step;                                                     \
            m[i] = mi;                                                                         \
            v[i] = vi;                                                                         \
        }                                                                                      \
    }

#define DEFINE_KERNEL(NAME, LOOP, T)                                                           \
    void NAME(const Item *items, int64_t count, int threads, T *const *params,                 \
              const T *const *grads, T *const *exp_avgs, T *const *exp_avg_sqs,                \
              const Hyper *h) {                                                                \
        _Pragma("omp parallel for schedule(dynamic, 4) num_threads(threads)")                  \
        for (int64_t k = 0; k < count; ++k) {                                                  \
            const int64_t t = items[k].tensor, c = items[k].config, b = items[k].begin;        \
            LOOP(params[t] + b, grads[t] + b, exp_avgs[t] + b, exp_avg_sqs[t] + b,             \
                 items[k].end - b, (T)h->step_size[c], (T)h->eps[c],                           \
                 h->l2 ? (T)h->l2[c] : (T)0, h->decay ? (T)h->decay[c] : (T)1,                 \
                 (T)(1.0 - h->beta1), (T)h->beta2, (T)(1.0 - h->beta2),                        \
                 (T)h->bias_correction2_sqrt, h->l2 != 0);                                     \
        }                                                                                      \
    }

DEFINE_LOOP(loop_f32, float, sqrtf)
DEFINE_LOOP(loop_f64, double, sqrt)
DEFINE_KERNEL(adam_f32, loop_f32, float)
DEFINE_KERNEL(adam_f64, loop_f64, double)
