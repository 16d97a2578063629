package reconciler

// AddressRecheck is addressRecheck, for the scenario tests.
const AddressRecheck = addressRecheck
