"""Writes iris.csv, train.csv and test.csv from the copy of the iris data set that scikit-learn ships.

The split is scikit-learn's stratified 75/25 train_test_split with random_state=0, so that results
here can be compared with scikit-learn's on the same rows. Run: python3 make_split.py
"""
import csv
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split

iris = load_iris()
columns = ["sepal_length", "sepal_width", "petal_length", "petal_width", "species"]
rows = [[*map(float, x), iris.target_names[y]] for x, y in zip(iris.data, iris.target)]


def write(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(columns)
        w.writerows(rows)


write("iris.csv", rows)
train, test = train_test_split(rows, test_size=0.25, stratify=[r[-1] for r in rows], random_state=0)
write("train.csv", train)
write("test.csv", test)
