"""An ordinary PyTorch training script (its own model, a DataLoader, scikit-learn's bundled
breast-cancer data), made tunable by adamtune with the 4 lines marked ``# adamtune``.

    python train.py                                  # trains once with torch's default Adam
    tuner sweep run examples/own_model/spec.yaml     # tunes lr, betas and eps for it
"""

import torch
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from workers import Trial  # adamtune

EPOCHS = 20


class Net(nn.Module):
    def __init__(self, n_features: int = 30, hidden: int = 32) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)  # (B, 2) logits


def load_data() -> tuple[TensorDataset, TensorDataset]:
    x, y = load_breast_cancer(return_X_y=True)  # (569, 30) features, (569,) labels
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    scaler = StandardScaler().fit(x_train)
    as_set = lambda x, y: TensorDataset(torch.tensor(scaler.transform(x), dtype=torch.float32), torch.tensor(y))
    return as_set(x_train, y_train), as_set(x_val, y_val)


def train(trial=Trial.defaults(max_epochs=EPOCHS)):  # adamtune
    torch.manual_seed(0)
    train_set, val_set = load_data()
    loader = DataLoader(train_set, batch_size=32, shuffle=True)
    x_val, y_val = val_set.tensors
    model = Net()
    optimizer = trial.optimizer(model.parameters())  # adamtune
    loss_fn = nn.CrossEntropyLoss()
    for _epoch in range(EPOCHS):
        model.train()
        for x, y in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            logits = model(x_val)
            val_loss = loss_fn(logits, y_val).item()
            val_accuracy = (logits.argmax(dim=1) == y_val).float().mean().item()
        trial.report(val_loss=val_loss, val_accuracy=val_accuracy)  # adamtune


if __name__ == "__main__":
    train()
