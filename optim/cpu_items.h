/* A work item of the one-pass CPU loops (see optim/cpu_items.py): a contiguous run of
 * elements of one stacked tensor that belongs to one config. */
#include <stdint.h>

typedef struct {
    int64_t tensor; /* index into the pointer tables */
    int64_t config; /* index into the per-config hyperparameters */
    int64_t begin;  /* element range inside the tensor */
    int64_t end;
} Item;

/* The fields every loop's Hyper struct starts with (cpu_items.HYPER_FIELDS): per-config
 * arrays (l2 and decay are NULL when unused), then the betas. */
#define HYPER_COMMON                                                                       \
    const double *step_size; /* lr / (1 - beta1^t), times AvaGrad's gamma */              \
    const double *eps;                                                                     \
    const double *l2;    /* folded into the gradient */                                   \
    const double *decay; /* decoupled: 1 - lr * lambda */                                 \
    double beta1, beta2;
