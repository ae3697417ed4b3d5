/*
 * Official AvaGrad step in one pass over memory, for CPU tensors (see optim/avagrad.py for
 * the rule and ALGORITHMS.md for the maths). Each element is read and written once: the
 * update with v_{t-1}, the new m and v, and the sum of q^-2 that gives the next step's gamma.
 *
 * Work is cut into items: a contiguous run of elements of one stacked tensor that belongs
 * to one config. Items are shared among OpenMP threads (torch's own runtime, already loaded
 * by the process); every item writes its own partial sum, so results do not depend on the
 * number of threads.
 */
#include <math.h>

#include "cpu_items.h"

typedef struct {
    HYPER_COMMON
    double delayed_correction, correction;
    int32_t moving, normalise;
} Hyper;

/* Branches are selects and every store is unconditional, so the loop vectorises. */
#define DEFINE_LOOP(NAME, T, SQRT)                                                             \
    static double NAME(T *restrict p, const T *restrict g, T *restrict m, T *restrict v,       \
                       int64_t n, T step, T eps, T l2, T decay, T w, T b2, T one_minus_b2,     \
                       T dc, T corr, int use_l2, int moving, int normalise) {                  \
        const T one_minus_w = (T)1 - w;                                                        \
        const int small_w = w < (T)0.5;                                                        \
        double acc = 0.0;                                                                      \
        _Pragma("omp simd reduction(+ : acc)") for (int64_t i = 0; i < n; ++i) {               \
            const T pi = p[i], vi = v[i];                                                      \
            const T grad = use_l2 ? g[i] + pi * l2 : g[i];                                     \
            const T mi = small_w ? m[i] + w * (grad - m[i])                                    \
                                 : grad - (grad - m[i]) * one_minus_w;                         \
            const T root = SQRT(vi);                                                           \
            const T moved = pi * decay - mi / (root * dc + eps) * step;                        \
            const T q = (T)1 / (root * corr + eps);                                            \
            p[i] = moving ? moved : pi;                                                        \
            m[i] = mi;                                                                         \
            v[i] = vi * b2 + one_minus_b2 * (grad * grad);                                     \
            acc += normalise ? (double)(q * q) : 0.0;                                          \
        }                                                                                      \
        return acc;                                                                            \
    }

/* Hyperparameters are cast to T as torch casts them; 1 - beta is taken in double first. */
#define DEFINE_KERNEL(NAME, LOOP, T)                                                           \
    void NAME(const Item *items, int64_t count, int threads, T *const *params,                 \
              const T *const *grads, T *const *exp_avgs, T *const *exp_avg_sqs,                \
              const Hyper *h, double *partial_sums) {                                          \
        _Pragma("omp parallel for schedule(dynamic, 4) num_threads(threads)")                  \
        for (int64_t k = 0; k < count; ++k) {                                                  \
            const int64_t t = items[k].tensor, c = items[k].config, b = items[k].begin;        \
            partial_sums[k] = LOOP(                                                            \
                params[t] + b, grads[t] + b, exp_avgs[t] + b, exp_avg_sqs[t] + b,              \
                items[k].end - b, (T)h->step_size[c], (T)h->eps[c],                            \
                h->l2 ? (T)h->l2[c] : (T)0, h->decay ? (T)h->decay[c] : (T)1,                  \
                (T)(1.0 - h->beta1), (T)h->beta2, (T)(1.0 - h->beta2),                         \
                (T)h->delayed_correction, (T)h->correction, h->l2 != 0, h->moving,             \
                h->normalise);                                                                 \
        }                                                                                      \
    }

DEFINE_LOOP(loop_f32, float, sqrtf)
DEFINE_LOOP(loop_f64, double, sqrt)
DEFINE_KERNEL(avagrad_f32, loop_f32, float)
DEFINE_KERNEL(avagrad_f64, loop_f64, double)
