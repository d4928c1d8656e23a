/** The domain of an address (after its last `@`), lower-cased: the form routing and the provider index compare. */
export const domainOf = (address: string): string => address.slice(address.lastIndexOf('@') + 1).toLowerCase();
