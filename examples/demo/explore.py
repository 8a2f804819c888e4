# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Breast-cancer data: a first look
#
# The exploration that comes before any pipeline: how big is the data, how balanced,
# which measurements separate the classes, and what a plain baseline scores. `make demo`
# runs this notebook top to bottom in a fresh kernel with parameters (as papermill
# would), as one tracked run: what it logs and records lands on that run.

# %%
import matplotlib.pyplot as plt
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import kiln

# %% tags=["parameters"]
test_size = 0.25
seed = 42

# %%
data = load_breast_cancer(as_frame=True)
X, y = data.data, data.target
print(f"{X.shape[0]} rows, {X.shape[1]} features; target: {dict(enumerate(data.target_names))}")
y.value_counts(normalize=True).round(3)

# %% [markdown]
# Which measurements separate malignant (0) from benign (1) tumours best?

# %%
separation = X.corrwith(y).abs().sort_values(ascending=False)
separation.head(8).round(3)

# %%
top = separation.index[0]
fig, ax = plt.subplots(figsize=(6, 3))
for label, name in enumerate(data.target_names):
    ax.hist(X.loc[y == label, top], bins=30, alpha=0.6, label=name)
ax.set_xlabel(top)
ax.legend()
plt.show()

# %% [markdown]
# A baseline to beat: a scaled logistic regression, cross-validated on the training part
# of the split the pipeline uses (`test_size`, `seed`).

# %%
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=test_size, stratify=y, random_state=seed
)
baseline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
baseline_auc = cross_val_score(baseline, X_train, y_train, cv=5, scoring="roc_auc").mean()
kiln.log_metrics(
    {
        "rows": len(X),
        "features": X.shape[1],
        "benign_share": float(y.mean()),
        "baseline_cv_auc": float(baseline_auc),
    }
)
kiln.record("top_features", separation.index[:5].tolist())
print(f"baseline cross-validated AUC: {baseline_auc:.4f}")
