/** Types for @ewsjs/ntlm-client 3 (it ships none): the three NTLM message functions used by sasl.ts. */
declare module '@ewsjs/ntlm-client' {
  export interface Type2Message {
    readonly challenge: Buffer;
    readonly targetName: string;
    readonly version: 1 | 2;
  }
  /** "NTLM <base64 negotiate message>" */
  export function createType1Message(workstation?: string, target?: string): string;
  export function decodeType2Message(base64: string): Type2Message;
  /** "NTLM <base64 authenticate message>" */
  export function createType3Message(type2: Type2Message, username: string, password: string, workstation?: string, target?: string): string;
}
