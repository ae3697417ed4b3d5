/*
 * mnist1d-resnet's BatchNorm-ReLU on CPU, fused with what surrounds it (built by
 * optim.native; workers/tasks/resnet_native.py calls it, resnet_ops.py is the portable path).
 *
 * Activations are rows of M = L*N values (one channel of one config; position-major, the
 * batch N innermost). Forward: batch (or running) statistics, y = ReLU((x - mean) * invstd *
 * gamma + beta), written straight into the im2col columns of the next kernel-3 convolution
 * (stride 1 or 2, padding 1) or averaged over positions (global pooling). Backward: the
 * column gradient is summed back onto positions (col2im), masked by ReLU (y recomputed from
 * x), pushed through BatchNorm, and an identity shortcut's gradient is added. Rows are
 * independent: a configuration's results never depend on another's values. Sums run in
 * LANES interleaved partial sums (independent SIMD chains), added up in double at the end. Single-threaded: the trainer runs one job per core.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { COLUMNS = 0, POOL = 1 };
/* Independent partial sums per reduction: enough SIMD chains to hide the add latency. */
#define LANES 32

#define DEFINE_KERNELS(SUFFIX, T)                                                              \
    /* Sum of LANES partial sums, in double. */                                              \
    static double total_##SUFFIX(const T *restrict a) {                                        \
        double s = 0.0;                                                                        \
        for (int k = 0; k < LANES; ++k) s += (double)a[k];                                     \
        return s;                                                                              \
    }                                                                                          \
                                                                                               \
    /* Mean and biased variance of one row of m values: two passes, LANES accumulators. */    \
    static void stats_##SUFFIX(const T *restrict x, int64_t m, double *mean, double *var) {   \
        T acc[LANES] = {0};                                                                    \
        int64_t j = 0;                                                                         \
        for (; j + LANES <= m; j += LANES) {                                                   \
            _Pragma("omp simd") for (int k = 0; k < LANES; ++k) acc[k] += x[j + k];            \
        }                                                                                      \
        for (int k = 0; j + k < m; ++k) acc[k] += x[j + k];                                    \
        const double mu = total_##SUFFIX(acc) / (double)m;                                     \
        const T mu_t = (T)mu;                                                                  \
        T sq[LANES] = {0};                                                                     \
        for (j = 0; j + LANES <= m; j += LANES) {                                              \
            _Pragma("omp simd") for (int k = 0; k < LANES; ++k) {                              \
                const T d = x[j + k] - mu_t;                                                   \
                sq[k] += d * d;                                                                \
            }                                                                                  \
        }                                                                                      \
        for (int k = 0; j + k < m; ++k) {                                                      \
            const T d = x[j + k] - mu_t;                                                       \
            sq[k] += d * d;                                                                    \
        }                                                                                      \
        *mean = mu;                                                                            \
        *var = total_##SUFFIX(sq) / (double)m;                                                 \
    }                                                                                          \
                                                                                               \
    int resnet_bn_forward_##SUFFIX(                                                            \
        const T *x, int64_t rows, int64_t channels, int64_t length, int64_t n,                 \
        const T *gamma, const T *beta, int64_t param_stride, T *running_mean,                  \
        T *running_var, int train, double momentum, double eps, T *saved_mean,                 \
        T *saved_invstd, T *out, int mode, int64_t stride) {                                   \
        const int64_t m = length * n;                                                          \
        const int64_t out_length = (length - 1) / stride + 1;                                  \
        T *y = (T *)malloc(sizeof(T) * (size_t)m);                                             \
        if (y == NULL) return 1;                                                               \
        for (int64_t r = 0; r < rows; ++r) {                                                   \
            const T *xr = x + r * m;                                                           \
            const int64_t c = r / channels, i = r % channels;                                  \
            double mu, inv;                                                                    \
            if (train) {                                                                       \
                double var;                                                                    \
                stats_##SUFFIX(xr, m, &mu, &var);                                 \
                const double unbiased = m > 1 ? var * (double)m / (double)(m - 1) : var;       \
                running_mean[r] = (T)((1.0 - momentum) * running_mean[r] + momentum * mu);     \
                running_var[r] = (T)((1.0 - momentum) * running_var[r] + momentum * unbiased); \
                inv = 1.0 / sqrt(var + eps);                                                   \
                saved_mean[r] = (T)mu;                                                         \
                saved_invstd[r] = (T)inv;                                                      \
            } else {                                                                           \
                mu = running_mean[r];                                                          \
                inv = 1.0 / sqrt((double)running_var[r] + eps);                                \
            }                                                                                  \
            const T mean_t = (T)mu;                                                            \
            const T scale = (T)inv * gamma[c * param_stride + i];                              \
            const T shift = beta[c * param_stride + i];                                        \
            _Pragma("omp simd") for (int64_t j = 0; j < m; ++j) {                              \
                const T v = (xr[j] - mean_t) * scale + shift;                                  \
                y[j] = v > (T)0 ? v : (T)0;                                                    \
            }                                                                                  \
            if (mode == POOL) {                                                                \
                T *o = out + r * n;                                                            \
                memcpy(o, y, sizeof(T) * (size_t)n);                                           \
                for (int64_t l = 1; l < length; ++l) {                                         \
                    const T *yl = y + l * n;                                                   \
                    _Pragma("omp simd") for (int64_t b = 0; b < n; ++b) o[b] += yl[b];         \
                }                                                                              \
                const T share = (T)1 / (T)length;                                              \
                _Pragma("omp simd") for (int64_t b = 0; b < n; ++b) o[b] *= share;             \
                continue;                                                                      \
            }                                                                                  \
            T *base = out + (c * 3 * channels + i * 3) * out_length * n;                       \
            for (int64_t k = 0; k < 3; ++k) {                                                  \
                T *tap = base + k * out_length * n;                                            \
                for (int64_t q = 0; q < out_length; ++q) {                                     \
                    const int64_t l = q * stride + k - 1;                                      \
                    if (l < 0 || l >= length) {                                                \
                        memset(tap + q * n, 0, sizeof(T) * (size_t)n);                         \
                    } else {                                                                   \
                        memcpy(tap + q * n, y + l * n, sizeof(T) * (size_t)n);                 \
                    }                                                                          \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
        free(y);                                                                               \
        return 0;                                                                              \
    }                                                                                          \
                                                                                               \
    /* The gradient reaching one row's ReLU output: col2im of its columns' gradient (plus  \
       a 1x1 shortcut's on the middle tap), or the pooled gradient spread over positions. */  \
    static void relu_grad_##SUFFIX(const T *restrict grad, const T *restrict centre,          \
                                   int64_t r, int64_t c, int64_t i, int64_t channels,          \
                                   int64_t length, int64_t n, int mode, int64_t stride,        \
                                   T *restrict dy) {                                           \
        const int64_t m = length * n, out_length = (length - 1) / stride + 1;                  \
        if (mode == POOL) {                                                                    \
            const T *g = grad + r * n;                                                         \
            const T share = (T)1 / (T)length;                                                  \
            for (int64_t l = 0; l < length; ++l) {                                             \
                T *d = dy + l * n;                                                             \
                _Pragma("omp simd") for (int64_t b = 0; b < n; ++b) d[b] = g[b] * share;       \
            }                                                                                  \
            return;                                                                            \
        }                                                                                      \
        memset(dy, 0, sizeof(T) * (size_t)m);                                                  \
        const T *base = grad + (c * 3 * channels + i * 3) * out_length * n;                    \
        for (int64_t k = 0; k < 3; ++k) {                                                      \
            const T *tap = base + k * out_length * n;                                          \
            for (int64_t q = 0; q < out_length; ++q) {                                         \
                const int64_t l = q * stride + k - 1;                                          \
                if (l < 0 || l >= length) continue;                                            \
                T *d = dy + l * n;                                                             \
                const T *s = tap + q * n;                                                      \
                _Pragma("omp simd") for (int64_t b = 0; b < n; ++b) d[b] += s[b];              \
            }                                                                                  \
        }                                                                                      \
        if (centre == NULL) return;                                                            \
        const T *cr = centre + r * out_length * n;                                             \
        for (int64_t q = 0; q < out_length; ++q) {                                             \
            T *d = dy + q * stride * n;                                                        \
            const T *s = cr + q * n;                                                           \
            _Pragma("omp simd") for (int64_t b = 0; b < n; ++b) d[b] += s[b];                  \
        }                                                                                      \
    }                                                                                          \
                                                                                               \
    int resnet_bn_backward_##SUFFIX(                                                           \
        const T *grad, const T *centre, const T *residual, int64_t rows, int64_t channels,     \
        int64_t length, int64_t n, const T *x, const T *saved_mean, const T *saved_invstd,     \
        const T *gamma, const T *beta, int64_t param_stride, T *dx, T *dgamma, T *dbeta,       \
        int64_t grad_stride, int mode, int64_t stride) {                                       \
        const int64_t m = length * n;                                                          \
        T *dy = (T *)malloc(sizeof(T) * (size_t)m);                                            \
        if (dy == NULL) return 1;                                                              \
        for (int64_t r = 0; r < rows; ++r) {                                                   \
            const int64_t c = r / channels, i = r % channels;                                  \
            relu_grad_##SUFFIX(grad, centre, r, c, i, channels, length, n, mode, stride, dy);  \
            const T *xr = x + r * m;                                                           \
            const T mean_t = saved_mean[r], inv = saved_invstd[r];                             \
            const T g = gamma[c * param_stride + i], bt = beta[c * param_stride + i];          \
            const T scale = inv * g;                                                           \
            T acc1[LANES] = {0}, acc2[LANES] = {0};                                            \
            int64_t j = 0;                                                                     \
            for (; j + LANES <= m; j += LANES) {                                               \
                _Pragma("omp simd") for (int k = 0; k < LANES; ++k) {                          \
                    const T xc = xr[j + k] - mean_t;                                           \
                    const T d = xc * scale + bt > (T)0 ? dy[j + k] : (T)0;                     \
                    dy[j + k] = d;                                                             \
                    acc1[k] += d;                                                              \
                    acc2[k] += d * (xc * inv);                                                 \
                }                                                                              \
            }                                                                                  \
            for (int k = 0; j + k < m; ++k) {                                                  \
                const T xc = xr[j + k] - mean_t;                                               \
                const T d = xc * scale + bt > (T)0 ? dy[j + k] : (T)0;                         \
                dy[j + k] = d;                                                                 \
                acc1[k] += d;                                                                  \
                acc2[k] += d * (xc * inv);                                                     \
            }                                                                                  \
            const double s1 = total_##SUFFIX(acc1), s2 = total_##SUFFIX(acc2);           \
            const T mean_dy = (T)(s1 / (double)m), mean_dyx = (T)(s2 / (double)m);             \
            T *dxr = dx + r * m;                                                               \
            if (residual != NULL) {                                                            \
                const T *res = residual + r * m;                                               \
                _Pragma("omp simd") for (int64_t j = 0; j < m; ++j) {                          \
                    const T xhat = (xr[j] - mean_t) * inv;                                     \
                    dxr[j] = (dy[j] - mean_dy - xhat * mean_dyx) * scale + res[j];             \
                }                                                                              \
            } else {                                                                           \
                _Pragma("omp simd") for (int64_t j = 0; j < m; ++j) {                          \
                    const T xhat = (xr[j] - mean_t) * inv;                                     \
                    dxr[j] = (dy[j] - mean_dy - xhat * mean_dyx) * scale;                      \
                }                                                                              \
            }                                                                                  \
            dgamma[c * grad_stride + i] = (T)s2;                                               \
            dbeta[c * grad_stride + i] = (T)s1;                                                \
        }                                                                                      \
        free(dy);                                                                              \
        return 0;                                                                              \
    }

DEFINE_KERNELS(f32, float)
DEFINE_KERNELS(f64, double)
