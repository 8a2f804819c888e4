"""pytest helpers: ML checks for any flavor, and the `kiln.Model` conformance suite.

After torchtest's idea, for any model:

```python
from kiln import testing

testing.assert_params_change(model, X, y)             # one training step moves them
testing.assert_params_frozen(model, X, y, ["embed"])  # ... but not the frozen ones
testing.assert_outputs_in_range(model, X, low=0)      # no NaN, in range, probabilities sum to 1
testing.assert_all_features_used(model, X)            # every feature can change the output
testing.assert_deterministic(make_model, X, y, seed=0)
testing.assert_signature_compatible(new_model, old_model)  # a safe upgrade
testing.check_model(MyModel(), X, y)                  # scikit-learn's check_estimator, for kiln.Model
```

A training step is `partial_fit` when the model has it; pass `step=` (a function of
model, X, y) for anything else, such as one optimiser step of a PyTorch module.
"""

from kiln.testing._checks import (
    assert_all_features_used,
    assert_deterministic,
    assert_outputs_in_range,
    assert_params_change,
    assert_params_frozen,
    learned_state,
    train_step,
)
from kiln.testing._conformance import assert_signature_compatible, check_model, model_checks

__all__ = [
    "assert_all_features_used",
    "assert_deterministic",
    "assert_outputs_in_range",
    "assert_params_change",
    "assert_params_frozen",
    "assert_signature_compatible",
    "check_model",
    "learned_state",
    "model_checks",
    "train_step",
]
